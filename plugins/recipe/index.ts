// fim-recipe (reference §4.10, §14): recipes fetched from the remote (fim-remote) into
// DATA/recipes, shown, and installed with the bundle's package manager. The work lives in
// commands.ts, loaded only when the command runs (start-up stays cheap).
import { parseWord, rejectTrailing, splitRange } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";

const NAME = "recipe";
const OPS = ["fetch", "info", "install"] as const;

const invalidRecipes = (message: string) => new FimError(message, { level: "C" }).context("Invalid recipes", "C");

export const recipePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-recipe", {
        name: "fim-recipe",
        summary: "Fetch, inspect and install recipes (package lists) from the remote",
        // info only reads the cache; fetch and install write and run for a while.
        help: [
          {
            usage: "fim-recipe <fetch> <recipes>",
            args: [["fetch", "Download recipes and their dependencies into the cache"], ["recipes", "Name of the recipes to download, comma-separated"]],
            notes: [
              "Recipes are downloaded from '<remote>/<dist>/latest/<name>.json', <dist> being the image's distribution in lower case",
              "The remote is configured with 'fim-remote set <url>'",
              "Dependencies are fetched too; a recipe that depends on itself (a cycle) is refused",
            ],
            examples: ["fim-recipe fetch gpu", "fim-recipe fetch gpu,audio,xorg"],
          },
          {
            usage: "fim-recipe <info> <recipes>",
            args: [["info", "Show what cached recipes contain"], ["recipes", "Name of the recipes, comma-separated"]],
            examples: ["fim-recipe info gpu", "fim-recipe info gpu,audio,xorg"],
          },
          {
            usage: "fim-recipe <install> <recipes>",
            args: [["install", "Install the packages of recipes and their dependencies (fetched when not cached)"], ["recipes", "Name of the recipes, comma-separated"]],
            notes: ["Packages are installed as root with the distribution's package manager; the image needs the 'network' permission"],
            examples: ["fim-recipe install gpu", "fim-recipe install gpu,audio,xorg"],
          },
        ],
        parse(args) {
          const [opWord, list, ...trailing] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-recipe' (<fetch|info|install>)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid recipe operation");
          if (op === "NONE") throw new FimError("Invalid recipe operation", { level: "C" });
          if (list === undefined) throw invalidRecipes("Missing recipe for operation");
          if (list === "") throw invalidRecipes("Recipe argument is empty");
          rejectTrailing("fim-recipe", trailing);
          // Not trimmed, as upstream: "a, b" names ' b'.
          const names = splitRange(list);
          return async () => (await import("./commands.ts"))[op](runtime, names);
        },
      }),
    );
  },
};
