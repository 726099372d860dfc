// Resolves argv to a command (reference §3): `fim-<name>` words name a command; anything
// else runs the stored boot command, registered by a plugin under DEFAULT_COMMAND.
import { didYouMean } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";

export const DEFAULT_COMMAND = "default";
const PREFIX = "fim-";
const HELP = "fim-help";
/** `fim-perms --help` is `fim-help perms`, for every command (a program called `-h` is not worth keeping). */
const HELP_FLAGS = new Set(["--help", "-h"]);

export const dispatchPlugin: Plugin = {
  name: "dispatch",
  apply(runtime) {
    runtime.hooks.parse.tapPromise("dispatch", async (argv) => {
      const [first, ...rest] = argv;
      if (first === undefined || !first.startsWith(PREFIX)) return { command: DEFAULT_COMMAND, args: argv };
      const command = runtime.commands.get(first);
      if (!command) {
        // Compared without the prefix every command shares (`fim-foo` is no typo of `fim-boot`).
        const names = [...runtime.commands.values()].filter((known) => !known.hidden).map((known) => known.name.slice(PREFIX.length));
        const near = didYouMean(first.slice(PREFIX.length), names).replace(/'(.*)'/, `'${PREFIX}$1'`);
        throw new FimError(`Unknown command: ${first}${near}`, { level: "C" }).context("Invalid fim command", "C");
      }
      if (rest.length > 0 && HELP_FLAGS.has(rest[0]!) && runtime.commands.has(HELP)) return { command: HELP, args: [first] };
      return { command: first, args: rest };
    });
  },
};
