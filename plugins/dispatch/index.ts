// Resolves argv to a command (reference §3): `fim-<name>` words name a command; anything
// else runs the stored boot command, registered by a plugin under DEFAULT_COMMAND.
import { FimError } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";

export const DEFAULT_COMMAND = "default";
const PREFIX = "fim-";

export const dispatchPlugin: Plugin = {
  name: "dispatch",
  apply(runtime) {
    runtime.hooks.parse.tapPromise("dispatch", async (argv) => {
      const [first, ...rest] = argv;
      if (first === undefined || !first.startsWith(PREFIX)) return { command: DEFAULT_COMMAND, args: argv };
      if (!runtime.commands.has(first)) {
        throw new FimError(`Unknown command: ${first}`, { level: "C" }).context("Invalid fim command", "C");
      }
      return { command: first, args: rest };
    });
  },
};
