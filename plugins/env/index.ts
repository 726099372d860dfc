// fim-env (reference §4.4). Values are stored verbatim and expanded like a shell word when
// used (core/expand.ts): no truncation at spaces, nothing executed but `$(…)`.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import { SANDBOX_STAGE } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { SLOTS, updateJson } from "../../core/reserved.ts";
import { EnvSchema, expandedEnv } from "./store.ts";

export { expandedEnv, readEnv } from "./store.ts";

const NAME = "env";
const OPS = ["add", "set", "del", "list", "clear"] as const;
// Any key but an empty one: a key may be expanded when used (`$(echo $META)=WORLD`).
const Assignment = lazy(() => v.pipe(v.string(), v.regex(/^[^=]+=/)));

/** Splits `K=V` at the first `=`; rejects entries without a key. */
function parseAssignments(entries: string[]): [string, string][] {
  return entries.map((entry) => {
    if (!v.is(Assignment(), entry)) throw new FimError(`Variable assignment '${entry}' is invalid`, { level: "C" });
    const at = entry.indexOf("=");
    return [entry.slice(0, at), entry.slice(at + 1)];
  });
}

export const envPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    const update = (change: (env: Record<string, string>) => void) =>
      updateJson(runtime.image, SLOTS.environment, EnvSchema(), (env = {}) => {
        change(env);
        return env;
      });

    // Expanded once per run, on the host (reference §6.2): identity reads it too.
    runtime.hooks.facts.tapPromise(NAME, async (facts) => ({ ...facts, environment: Object.fromEntries(await expandedEnv(runtime, log)) }));

    // The guest gets the stored variables.
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.environment }, async (operations, launch) => {
      for (const [key, value] of Object.entries(launch.facts.environment)) {
        log.info(`ENV: ${key}=${value}`);
        launch.env[key] = value;
      }
      // Upstream always forces TERM=xterm; a host TERM is kept here (terminfo permitting).
      launch.env.TERM ??= process.env.TERM || "xterm";
      return operations;
    });

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-env", {
        name: "fim-env",
        brief: true,
        summary: "Edit the environment variables of the flatimage",
        // Never in place: `list` may run `$(…)` for as long as it likes, and a process that
        // executes the image file blocks every writer (ETXTBSY).
        help: [
          {
            usage: "fim-env <add|set> <'key=value'...>",
            args: [
              ["add", "Include or overwrite the given variables"],
              ["set", "Replace all variables with the given ones"],
              ["key=value", "Variable name and value; both are expanded like a shell word when used ($VAR, ${VAR:-default}, $(command))"],
            ],
            examples: ["fim-env add 'APP_NAME=hello-world' 'HOME=/home/my-app'"],
          },
          { usage: "fim-env <del> <keys...>", args: [["del", "Delete the given variables"]], examples: ["fim-env del APP_NAME HOME"] },
          { usage: "fim-env <list>", args: [["list", "List the variables, expanded"]] },
          { usage: "fim-env <clear>", args: [["clear", "Delete all variables"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-env' (add,del,list,set,clear)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid env operation");
          if (op === "NONE") throw new FimError("Invalid operation for environment", { level: "C" });
          if (op === "list" || op === "clear") rejectTrailing("fim-env", rest);
          else if (rest.length === 0) {
            throw new FimError(`Missing arguments for '${op.toUpperCase()}'`, { level: "C" }).context("Failed to process variables", "C");
          }
          switch (op) {
            case "add":
            case "set":
              return () =>
                withContext(op === "add" ? "Failed to add variables" : "Failed to set variables", () => {
                  // All entries are checked before anything is written (upstream cleared first).
                  const pairs = parseAssignments(rest);
                  update((env) => {
                    if (op === "set") for (const key of Object.keys(env)) delete env[key];
                    for (const [key, value] of pairs) env[key] = value; // the last of a repeated key wins
                  });
                  for (const [key, value] of pairs) log.info(`Included variable '${key}' with value '${value}'`);
                });
            case "del":
              return () =>
                withContext("Failed to delete variables", () => {
                  const found = new Set<string>();
                  update((env) => {
                    for (const key of rest) if (key in env && delete env[key]) found.add(key);
                  });
                  for (const key of rest) log.info(found.has(key) ? `Erase key '${key}'` : `Key '${key}' not found for deletion`);
                });
            case "clear":
              return () => withContext("Failed to clear variables", () => update((env) => Object.keys(env).forEach((key) => delete env[key])));
            case "list":
              return () =>
                withContext("Failed to list variables", async () => {
                  const lines = await expandedEnv(runtime, log);
                  write(1, lines.map(([key, value]) => `${key}=${value}\n`).join(""));
                });
          }
        },
      }),
    );
  },
};
