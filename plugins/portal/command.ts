// fim-portal: the host programs guests of this image may run through fim_portal.
import { parseSwitch, parseWord, rejectTrailing, splitRange } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import type { Command } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { checkPrograms, clearPolicy, readPolicy, updatePolicy } from "./allowlist.ts";

const OPS = ["allow", "deny", "list", "all", "clear"] as const;
const ALL_ON_NOTE = "Every host program is allowed ('fim-portal all on'): the list applies again after 'fim-portal all off'";

/** Program words: several arguments, each possibly comma-separated, as other commands take lists. */
const programsOf = (args: string[]) => checkPrograms(args.flatMap((arg) => splitRange(arg)));

export function portalCommand(runtime: Runtime): Command {
  const log = runtime.logger("portal");
  return {
    name: "fim-portal",
    brief: true,
    summary: "Choose the host programs that guests may run with fim_portal",
    help: [
      {
        usage: "fim-portal <allow|deny> <programs...>",
        args: [
          ["allow", "Let guests run these host programs with 'fim_portal <program> [args...]'"],
          ["deny", "Remove these programs from the list"],
          ["programs", "Names looked up in the host's PATH (xdg-open) or absolute paths (/usr/bin/xdg-open), separated by spaces or commas"],
        ],
        notes: [
          "Nothing is allowed by default. A guest's request runs only when it names the same host file as an allowed entry; it runs with the host's environment, not the guest's",
          "A program that runs what its arguments say (sh, env, python3, flatpak-spawn...) lets guests run anything on the host",
        ],
        examples: ["fim-portal allow xdg-open,notify-send", "fim-portal deny notify-send"],
      },
      {
        usage: "fim-portal <all> <on|off>",
        args: [
          ["on", "Let guests run any host program, with their own environment (upstream FlatImage's portal): the sandbox no longer holds"],
          ["off", "Only the listed programs run (the default)"],
        ],
      },
      {
        usage: "fim-portal <list|clear>",
        args: [
          ["list", "List the allowed programs, one per line"],
          ["clear", "Empty the list and turn 'all' off"],
        ],
      },
    ],
    parse(args) {
      const [opWord, ...rest] = args;
      if (opWord === undefined) throw new FimError("Missing op for 'fim-portal' (<allow|deny|list|all|clear>)", { level: "C" });
      const op = parseWord(opWord, OPS, "Invalid portal operation");
      if (op === "NONE") throw new FimError("Invalid portal operation", { level: "C" });
      const image = () => runtime.image;

      if (op === "allow" || op === "deny") {
        const programs = programsOf(rest);
        if (programs.length === 0) throw new FimError(`Missing programs for '${op}' operation`, { level: "C" });
        return () =>
          withContext(`Failed to ${op} portal programs`, () => {
            let all = false;
            const absent: string[] = [];
            updatePolicy(image(), (policy) => {
              all = policy.all;
              if (op === "allow") return { ...policy, programs: [...new Set([...policy.programs, ...programs])] };
              for (const program of programs) if (!policy.programs.includes(program)) absent.push(program);
              return { ...policy, programs: policy.programs.filter((program) => !programs.includes(program)) };
            });
            for (const program of absent) log.warn(`'${program}' was not in the list`);
            if (all) log.warn(ALL_ON_NOTE);
          });
      }

      if (op === "all") {
        const [switchWord, ...trailing] = rest;
        if (switchWord === undefined) throw new FimError("Missing switch for 'all' operation (<on|off>)", { level: "C" });
        rejectTrailing("fim-portal", trailing);
        const on = parseSwitch(switchWord, "Invalid portal switch");
        return () =>
          withContext("Failed to set the portal switch", () => {
            updatePolicy(image(), (policy) => ({ ...policy, all: on }));
            if (on) log.warn("Guests of this image may now run any host program through fim_portal, with their own environment");
          });
      }

      rejectTrailing("fim-portal", rest);
      if (op === "clear") return () => withContext("Failed to clear portal programs", () => clearPolicy(image()));
      return () =>
        withContext("Failed to list portal programs", () => {
          const policy = readPolicy(image());
          if (policy.all) log.warn(ALL_ON_NOTE);
          write(1, policy.programs.map((program) => `${program}\n`).join(""));
        });
    },
  };
}
