// fim-instance list | exec (reference §4.11, §11). `exec` enters the instance's sandbox
// directly (fim_enter: its namespaces, root and working directory, as the caller mapped
// into them, so uid 0 in a fim-root instance); no daemon is involved.
import { isDigits, parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { execve } from "../../core/libc.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { PREPARE_STAGE, SANDBOX_STAGE } from "../../core/launch.ts";
import { claimInstanceDir, guestPid, liveInstances, registerInstance } from "./registry.ts";

const NAME = "instance";

export const instancePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.prepare.tapPromise({ name: NAME, stage: PREPARE_STAGE.instance }, async (launch) => claimInstanceDir(runtime, launch));

    // Last of the sandbox's preparation: from here the run is an instance.
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.portal + 10 }, async (operations, launch) => {
      registerInstance(runtime, launch.request.root);
      return operations;
    });

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-instance", {
        name: "fim-instance",
        brief: true,
        summary: "Manage running instances of the FlatImage",
        help: [
          {
            usage: "fim-instance <exec> <id> [args...]",
            args: [["exec", "Run a command in a running instance"], ["id", "ID of the instance, from 'fim-instance list'"], ["args", "Command and its arguments"]],
            examples: ["fim-instance exec 0 echo hello"],
          },
          { usage: "fim-instance <list>", args: [["list", "Lists running instances as <id>:<pid>"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-instance' (<exec|list>)", { level: "C" });
          const op = parseWord(opWord, ["exec", "list"] as const, "Invalid instance operation");
          if (op === "NONE") throw new FimError("Invalid instance operation", { level: "C" });
          if (op === "list") {
            rejectTrailing("fim-instance", rest);
            return () => write(1, liveInstances(runtime).map((pid, index) => `${index}:${pid}\n`).join(""));
          }
          const [idText, ...command] = rest;
          if (idText === undefined) throw new FimError("Missing 'id' argument for 'fim-instance'", { level: "C" });
          if (!isDigits(idText)) throw new FimError("Id argument must be a digit", { level: "C" });
          if (command.length === 0) throw new FimError("Missing 'cmd' argument for 'fim-instance'", { level: "C" });
          const id = Number(idText);
          if (!Number.isSafeInteger(id)) throw new FimError("Invalid instance ID", { level: "C" });
          return async () => {
            const instances = liveInstances(runtime);
            if (instances.length === 0) throw new FimError("No instances are running", { level: "C" });
            const instance = instances[id];
            if (instance === undefined) throw new FimError("Instance index out of bounds", { level: "C" });
            const guest = guestPid(runtime, instance);
            if (guest === undefined) throw new FimError(`Instance ${instance} has no sandbox running (it is starting or ending)`, { level: "C" });
            const enter = await runtime.tool("fim_enter");
            const failure = execve(enter, [enter, String(guest), ...command], process.env);
            throw new FimError(`Could not run '${enter}': ${failure}`, { level: "C" });
          };
        },
      }),
    );
  },
};
