// fim-casefold (reference §4.7, §8.4): the stored switch; the filesystem arrives with its own plugin.
import { parseSwitch, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readSlot, SLOTS, updateSlot } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { decideOverlay } from "../overlay/index.ts";

const NAME = "casefold";

/** Stored switch OR-ed with FIM_CASEFOLD=1 (the variable cannot turn a stored `on` off). */
export function casefoldEnabled(runtime: Runtime): boolean {
  return process.env.FIM_CASEFOLD === "1" || readSlot(runtime.image, SLOTS.casefold)[0] !== 0;
}

export const casefoldPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.facts.tapPromise(NAME, async (facts) => ({ ...facts, casefold: casefoldEnabled(runtime) }));
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-casefold", {
        name: "fim-casefold",
        brief: true,
        summary: "Enables casefold for the filesystem (ignore case)",
        help: [{ usage: "fim-casefold <on|off>", args: [["on", "Enables casefold"], ["off", "Disables casefold"]] }],
        parse(args) {
          const [word, ...rest] = args;
          if (word === undefined) throw new FimError("Incorrect number of arguments for 'fim-casefold' (<on|off>)", { level: "C" });
          const on = parseSwitch(word, "Invalid casefold switch");
          rejectTrailing("fim-casefold", rest);
          return () => {
            // Upstream decides the overlay type (and warns about casefold over BWRAP) while
            // loading the configuration, before the command: so `off` after `on` warns.
            if (casefoldEnabled(runtime)) decideOverlay(runtime, true);
            return withContext("Failed to write casefold status", () => updateSlot(runtime.image, SLOTS.casefold, () => Buffer.from([on ? 1 : 0])));
          };
        },
      }),
    );
  },
};
