// fim-remote (reference §4.9): the URL recipes are fetched from.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readJson, SLOTS, writeJson } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";

const NAME = "remote";
/** Upstream's recipe repository, preset in the bundles it has recipes for (alpine, arch). */
export const UPSTREAM_REMOTE = "https://raw.githubusercontent.com/flatimage/recipes/master";
const OPS = ["set", "show", "clear"] as const;
const RemoteSchema = lazy(() => v.object({ url: v.optional(v.string()) }));
const HttpUrl = lazy(() => v.pipe(v.string(), v.url(), v.regex(/^https?:\/\//i, "the URL must start with http:// or https://")));
const TOO_LONG = "Not enough space to fit remote URL";

/** The configured remote URL; throws `No remote URL configured` when there is none. */
export function remoteUrl(runtime: Runtime): string {
  const url = readJson(runtime.image, SLOTS.remote, RemoteSchema())?.url;
  if (!url) throw new FimError("No remote URL configured");
  return url;
}

export const remotePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-remote", {
        name: "fim-remote",
        summary: "Configure the remote URL for recipes",
        help: [
          {
            usage: "fim-remote <set> <url>",
            args: [["set", "Set the remote URL"], ["url", "The http:// or https:// URL of the recipe repository"]],
            examples: ["fim-remote set https://updates.example.com/repo"],
          },
          { usage: "fim-remote <show>", args: [["show", "Display the current remote URL"]] },
          { usage: "fim-remote <clear>", args: [["clear", "Clear the remote URL"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-remote' (<set|show|clear>)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid remote operation");
          if (op === "NONE") throw new FimError("Invalid remote operation", { level: "C" });
          if (op === "set") {
            const [url, ...trailing] = rest;
            if (url === undefined) throw new FimError("Missing URL for 'set' operation", { level: "C" });
            rejectTrailing("fim-remote", trailing);
            const checked = v.safeParse(HttpUrl(), url);
            if (!checked.success) throw new FimError(`Invalid remote URL '${url}': ${checked.issues[0].message}`, { level: "C" });
            return () =>
              withContext("Failed to set remote URL", () => {
                log.info(`Set remote URL to '${url}'`);
                writeJson(runtime.image, SLOTS.remote, { url }, TOO_LONG);
              });
          }
          rejectTrailing("fim-remote", rest);
          if (op === "clear") {
            return () =>
              withContext("Failed to clear remote URL", () => {
                writeJson(runtime.image, SLOTS.remote, {});
                log.info("Cleared remote URL");
              });
          }
          return () => withContext("Failed to get remote URL", () => write(1, `${remoteUrl(runtime)}\n`));
        },
      }),
    );
  },
};
