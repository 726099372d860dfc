// fim-boot (reference §4.8) and the default command: running the image without a fim-*
// word runs the stored boot program with the stored args, then the user's (reference §5).
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { asFimError, FimError, withContext } from "../../core/errors.ts";
import { expandOrKeep } from "../../core/expand.ts";
import { dumpJson } from "../../core/json.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readJson, SLOTS, writeJson } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { DEFAULT_COMMAND } from "../dispatch/index.ts";
import { guestCommand } from "../run/index.ts";

const NAME = "boot";
const OPS = ["set", "show", "clear"] as const;
const BootSchema = lazy(() => v.object({ program: v.string(), args: v.array(v.string()) }));
type Boot = v.InferOutput<ReturnType<typeof BootSchema>>;

/**
 * The stored boot command; an empty slot means none (bash). Damaged data is an error naming
 * the slot: upstream counted it as empty and silently started bash instead of the program.
 */
function readBoot(runtime: Runtime): Boot {
  try {
    return readJson(runtime.image, SLOTS.boot, BootSchema()) ?? { program: "", args: [] };
  } catch (error) {
    throw asFimError(error).context("The boot command stored in the image is damaged: store it again with 'fim-boot set <program> [args...]' (or 'fim-boot clear')", "C");
  }
}

export const bootPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.commands.tap(NAME, (commands) => {
      commands.set("fim-boot", {
        name: "fim-boot",
        brief: true,
        summary: "Configure the default startup command",
        help: [
          {
            usage: "fim-boot <set> <command> [args...]",
            args: [
              ["set", "Execute the given command when the flatimage is started"],
              ["command", "Startup command (expanded like a shell word at run time)"],
              ["args...", "Arguments for the startup command, stored verbatim"],
            ],
            examples: ["fim-boot set echo test"],
          },
          {
            usage: "fim-boot <show|clear>",
            args: [
              ["show", "Displays the current startup command"],
              ["clear", "Clears the set startup command"],
            ],
          },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-boot' (<set|show|clear>)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid boot operation");
          if (op === "NONE") throw new FimError("Invalid boot operation", { level: "C" });
          if (op === "set") {
            const [program, ...programArgs] = rest;
            if (!program) throw new FimError("Missing program for 'set' operation", { level: "C" });
            return () => withContext("Failed to set boot configuration", () => writeJson(runtime.image, SLOTS.boot, { program, args: programArgs }));
          }
          rejectTrailing("fim-boot", rest);
          if (op === "clear") {
            return () => withContext("Failed to clear boot configuration", () => writeJson(runtime.image, SLOTS.boot, { program: "", args: [] }));
          }
          return () =>
            withContext("Failed to read boot configuration", () => {
              const boot = readBoot(runtime);
              write(1, `${dumpJson({ args: boot.args, program: boot.program || "bash" })}\n`);
            });
        },
      });

      commands.set(DEFAULT_COMMAND, {
        name: DEFAULT_COMMAND,
        brief: true,
        summary: "Run the stored boot command",
        hidden: true,
        consoleLevel: "C",
        help: [],
        parse(args) {
          return () =>
            withContext("Failed to read boot configuration", async () => {
              const boot = readBoot(runtime);
              const program = boot.program === "" ? "bash" : await expandOrKeep(boot.program, log);
              return runtime.launch({ ...guestCommand(program, [...boot.args, ...args]), root: process.env.FIM_ROOT === "1" });
            });
        },
      });
      return commands;
    });
  },
};
