// The recipe file (reference §14.1), parsed, not trusted: it comes from a remote.
import * as v from "valibot";
import { FimError } from "../../core/errors.ts";

/** A recipe name: it becomes a file name in the cache and a URL path segment. */
export function checkName(name: string): void {
  if (name.includes("/") || name.includes("\0") || name === "." || name === "..") {
    throw new FimError(`Invalid recipe name '${name}'`);
  }
}

const RecipeSchema = v.object({
  description: v.string(),
  packages: v.array(v.string()),
  // Upstream silently ignored a malformed list; here it is an error, as everything else.
  dependencies: v.optional(v.array(v.string())),
  // Checked when it is used (install): an invalid one is ignored with a warning, as upstream.
  desktop: v.optional(v.unknown()),
});

export type Recipe = v.InferOutput<typeof RecipeSchema>;

/** The fields `fim-desktop setup` needs; the desktop plugin checks the rest. */
const DesktopShape = v.looseObject({
  name: v.string(),
  icon: v.string(),
  categories: v.array(v.string()),
  integrations: v.optional(v.array(v.string())),
});

function describe(issue: v.BaseIssue<unknown>): string {
  const path = v.getDotPath(issue);
  if (path === null) return `Invalid recipe: ${issue.message}`;
  const field = path.split(".")[0]!;
  if (path === field && issue.input === undefined) return `Missing '${field}' field`;
  return `Invalid '${path}' field: expected ${issue.expected}, received ${issue.received}`;
}

/** Parses and validates a recipe file's bytes; the error says what is wrong (upstream's wording). */
export function parseRecipe(bytes: Uint8Array): Recipe {
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") throw new FimError("Empty json file");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new FimError(`Could not parse json file: ${(error as Error).message}`);
  }
  // valibot's object() takes arrays too.
  if (json === null || typeof json !== "object" || Array.isArray(json)) throw new FimError(`Recipe is not a JSON object (received ${Array.isArray(json) ? "an array" : JSON.stringify(json)})`);
  const result = v.safeParse(RecipeSchema, json);
  if (!result.success) throw new FimError(describe(result.issues[0]));
  return result.output;
}

/** The recipe's desktop section if it has the shape `fim-desktop setup` takes, else why not. */
export function desktopSection(recipe: Recipe): { desktop: object } | { invalid: string } | undefined {
  if (recipe.desktop === undefined) return undefined;
  if (recipe.desktop === null || typeof recipe.desktop !== "object" || Array.isArray(recipe.desktop)) return { invalid: "not a JSON object" };
  const result = v.safeParse(DesktopShape, recipe.desktop);
  if (result.success) return { desktop: result.output };
  const issue = result.issues[0];
  const path = v.getDotPath(issue) ?? "";
  return { invalid: issue.input === undefined ? `'${path}' is missing` : `'${path}': expected ${issue.expected}, received ${issue.received}` };
}
