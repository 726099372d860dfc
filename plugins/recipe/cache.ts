// The recipe cache (DATA/recipes/<dist>/latest/<name>.json, reference §14.2) and the
// dependency walk shared by fetch and install.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import type { Runtime } from "../../core/runtime.ts";
import { checkName, type Recipe } from "./schema.ts";

/** The `<dist>` of URLs and cache paths: the bundle's distribution, lower-case (debian, alpine, …). */
export const distribution = (runtime: Runtime) => runtime.bundle.distribution.toLowerCase();

export const cacheDir = (runtime: Runtime) => `${runtime.paths.data}/recipes/${distribution(runtime)}/latest`;

export const cachePath = (runtime: Runtime, name: string) => `${cacheDir(runtime)}/${name}.json`;

/** `<remote without one trailing '/'>/<dist>/latest/<name>.json`. */
export const recipeUrl = (remote: string, dist: string, name: string) => `${remote.replace(/\/$/, "")}/${dist}/latest/${encodeURIComponent(name)}.json`;

/**
 * Downloaded files wait here until every recipe of the command has been fetched and checked,
 * then enter the cache together (each through a temporary file and a rename): a failure
 * anywhere (404, timeout, bad JSON, a cycle) leaves the cache as it was.
 */
export class Staging {
  private readonly files = new Map<string, { name: string; bytes: Uint8Array }>();

  add(name: string, path: string, bytes: Uint8Array): void {
    this.files.set(path, { name, bytes });
  }

  /** Saves the files; `saved` is told of each one as it lands. */
  commit(saved: (name: string, path: string) => void): void {
    for (const [path, { name, bytes }] of this.files) {
      const dir = path.slice(0, path.lastIndexOf("/"));
      const temporary = `${dir}/.${path.slice(dir.length + 1)}.${process.pid}.part`;
      try {
        mkdirSync(dir, { recursive: true });
        writeFileSync(temporary, bytes);
        renameSync(temporary, path);
      } catch (error) {
        rmSync(temporary, { force: true });
        throw new FimError(`Could not save recipe to '${path}': ${(error as Error).message}`);
      }
      saved(name, path);
    }
    this.files.clear();
  }
}

export interface Resolved {
  name: string;
  recipe: Recipe;
}

/**
 * Walks the recipes depth-first, dependencies in listed order, each recipe once: a recipe
 * reached twice through different paths (a diamond) is fine; one that depends on itself
 * through its own path is a cycle, refused with that path. Returns dependencies before
 * their dependents.
 */
export async function resolve(names: string[], obtain: (name: string) => Promise<Recipe>): Promise<Resolved[]> {
  const order: Resolved[] = [];
  const done = new Set<string>();
  const path: string[] = [];
  const visit = async (name: string): Promise<void> => {
    const at = path.indexOf(name);
    if (at >= 0) throw new FimError(`Cyclic dependency for recipe '${name}': ${[...path.slice(at), name].join(" -> ")}`);
    if (done.has(name)) return;
    checkName(name);
    path.push(name);
    const recipe = await obtain(name);
    for (const dependency of recipe.dependencies ?? []) await visit(dependency);
    path.pop();
    done.add(name);
    order.push({ name, recipe });
  };
  for (const name of names) await visit(name);
  return order;
}
