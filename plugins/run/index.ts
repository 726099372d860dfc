// fim-exec and fim-root (reference §4.1–§4.2): run a program in the sandbox.
import { FimError } from "../../core/errors.ts";
import type { Command, Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { guestCommand } from "./guest.ts";

export { guestCommand } from "./guest.ts";
export { cwdWarning, type CwdContext } from "./cwd.ts";

const NAME = "run";

function command(runtime: Runtime, name: "fim-exec" | "fim-root", root: boolean): Command {
  return {
    name,
    brief: true,
    summary: root ? "Executes a command as the root user" : "Executes a command through the FlatImage launcher",
    consoleLevel: "C",
    help: [
      {
        usage: `${name} <program> [args...]`,
        args: [["program", "Name of the program to execute, searched in the container's PATH"], ["args", "Arguments for the executed program"]],
        examples: [root ? "fim-root id -u" : 'fim-exec echo -e "hello\\nworld"'],
      },
    ],
    parse(args) {
      const [program, ...rest] = args;
      if (program === undefined) throw new FimError(`Incorrect number of arguments for ${name}`, { level: "C" });
      return () => runtime.launch({ ...guestCommand(program, rest), root });
    },
  };
}

export const runPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) => commands.set("fim-exec", command(runtime, "fim-exec", false)).set("fim-root", command(runtime, "fim-root", true)));
  },
};
