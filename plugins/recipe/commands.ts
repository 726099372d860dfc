// fim-recipe fetch | info | install (reference §14.3–§14.5). Loaded only when the command runs.
import { existsSync, readFileSync } from "../../lib/fs.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write, type Logger } from "../../core/log.ts";
import type { Runtime } from "../../core/runtime.ts";
import { parseSetup, setupDesktop } from "../desktop/index.ts";
import { grantedPermissions } from "../perms/index.ts";
import { remoteUrl } from "../remote/index.ts";
import { cachePath, distribution, recipeUrl, resolve, Staging } from "./cache.ts";
import { download } from "./download.ts";
import { checkName, desktopSection, parseRecipe, type Recipe } from "./schema.ts";

const NAME = "recipe";

/** Said once a downloaded recipe is in the cache (after every recipe of the command was checked). */
const saved = (log: Logger) => (name: string, path: string) => log.info(`Successfully downloaded recipe '${name}' to '${path}'`);

/** Downloads recipes into `staging`, asking for the remote URL only when one is needed. */
function downloader(runtime: Runtime, log: Logger, staging: Staging) {
  let remote: string | undefined;
  return async (name: string): Promise<Recipe> => {
    remote ??= await withContext("Failed to get remote URL", () => remoteUrl(runtime));
    const url = recipeUrl(remote, distribution(runtime), name);
    const path = cachePath(runtime, name);
    log.info(`Downloading recipe from '${url}'`);
    log.info(`Saving to '${path}'`);
    const bytes = await withContext(`Could not download recipe '${name}' from '${url}'`, () => download(url, `${name}.json`));
    const recipe = await withContext(`Invalid recipe '${name}' from '${url}'`, () => parseRecipe(bytes));
    staging.add(name, path, bytes);
    return recipe;
  };
}

/** A cached recipe; `missing` is the message when it is not there. */
function readCached(path: string, missing: string): Recipe {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") throw new FimError(missing);
    throw new FimError(`Could not open recipe file '${path}': ${(error as Error).message}`);
  }
  try {
    return parseRecipe(bytes);
  } catch (error) {
    throw (error as FimError).context(`Invalid recipe file '${path}'`);
  }
}

export async function fetch(runtime: Runtime, names: string[]): Promise<number> {
  const log = runtime.logger(NAME);
  const staging = new Staging();
  await withContext("Failed to fetch recipe", async () => {
    await resolve(names, downloader(runtime, log, staging));
    staging.commit(saved(log));
  });
  return 0;
}

export async function info(runtime: Runtime, names: string[]): Promise<number> {
  await withContext("Failed to get recipe info", () => {
    for (const name of names) {
      checkName(name);
      const path = cachePath(runtime, name);
      const recipe = readCached(path, `Recipe '${name}' not found locally. Use 'fim-recipe fetch ${name}' first.`);
      const dependencies = recipe.dependencies ?? [];
      const text = [
        `Recipe: ${name}`,
        `Location: ${path}`,
        `Description: ${recipe.description}`,
        `Package count: ${recipe.packages.length}`,
        "Packages:",
        ...recipe.packages.map((name) => `  - ${name}`),
        `Dependencies: ${dependencies.length}`,
        ...dependencies.map((name) => `  - ${name}`),
      ];
      // Printed as each recipe is read: an error on a later name keeps the earlier output.
      write(1, `${text.join("\n")}\n`);
    }
  });
  return 0;
}

const capitalized = (word: string) => word.charAt(0).toUpperCase() + word.slice(1);

export async function install(runtime: Runtime, names: string[]): Promise<number> {
  const log = runtime.logger(NAME);
  const installCommand = runtime.bundle.installCommand;
  const unsupported = () => new FimError(`${capitalized(distribution(runtime))} does not support recipes`);

  const staging = new Staging();
  const fetchMissing = downloader(runtime, log, staging);
  const refused = unsupported();
  let recipes;
  try {
    recipes = await withContext("Failed to fetch recipe", async () => {
      const resolved = await resolve(names, async (name) => {
        const path = cachePath(runtime, name);
        if (!existsSync(path)) {
          // Nothing is downloaded for a bundle that could not install it anyway.
          if (!installCommand) throw refused;
          return fetchMissing(name);
        }
        // Cached recipes are walked first, as upstream (which said so before refusing blueprint).
        log.info(`Using existing recipe from '${path}'`);
        try {
          return readCached(path, `Recipe '${name}' not found locally`);
        } catch (error) {
          throw (error as FimError).context(`Could not load json recipe (fetch it again with 'fim-recipe fetch ${name}')`);
        }
      });
      staging.commit(saved(log));
      return resolved;
    });
  } catch (error) {
    throw error === refused ? unsupported() : error;
  }
  if (!installCommand) throw unsupported();

  // Dependencies come first; each package once.
  const packages = [...new Set(recipes.flatMap(({ recipe }) => recipe.packages))];
  let desktop: { name: string; section: object } | undefined;
  for (const { name, recipe } of recipes) {
    const section = desktopSection(recipe);
    if (section === undefined) continue;
    if ("invalid" in section) {
      log.warn(`Ignoring the desktop section of recipe '${name}': ${section.invalid}`);
      continue;
    }
    desktop = { name, section: section.desktop };
  }
  if (desktop) log.info(`Found desktop integration in recipe '${desktop.name}'`);

  if (!grantedPermissions(runtime).has("network")) {
    log.warn("The image has no 'network' permission: the package manager may fail to resolve its mirrors (fim-perms add network)");
  }
  // Before the package manager, not after as upstream: the run hands this process over to the
  // sandbox's supervisor and never returns here. The end state is the same (upstream set it up
  // whatever the package manager's status), and this run's own integration already uses it.
  if (desktop) await setupRecipeDesktop(runtime, log, desktop.section);

  const [program, ...args] = installCommand(packages);
  log.info(`Installing packages: ${packages.join(" ")}`);
  // Exactly like fim-root; the exit code is the package manager's.
  return runtime.launch({ program: program!, args, root: true });
}

async function setupRecipeDesktop(runtime: Runtime, log: Logger, section: object): Promise<void> {
  log.info("Setting up desktop integration from recipe");
  try {
    await setupDesktop(runtime, parseSetup(section, "section of the recipe"));
    log.info("Desktop integration setup successful");
  } catch (error) {
    const message = error instanceof FimError ? error.chain.map((link) => link.message).join(": ") : String(error);
    log.warn(`Failed to setup desktop integration: ${message}`);
  }
}
