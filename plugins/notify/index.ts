// fim-notify (reference §4.6): the stored switch for the start-up notification.
import { parseSwitch } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";
import { SLOTS, updateSlot } from "../../core/reserved.ts";

const NAME = "notify";

export const notifyPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-notify", {
        name: "fim-notify",
        summary: "Notify with 'notify-send' when the program starts",
        help: [{ usage: "fim-notify <on|off>", args: [["on", "Enables notify-send to notify the program start"], ["off", "Disables the start notification"]] }],
        parse(args) {
          if (args.length !== 1) throw new FimError("Incorrect number of arguments for 'fim-notify' (<on|off>)", { level: "C" });
          const on = parseSwitch(args[0]!, "Invalid notify switch");
          return () => withContext("Failed to write notify status", () => updateSlot(runtime.image, SLOTS.notify, () => Buffer.from([on ? 1 : 0])));
        },
      }),
    );
  },
};
