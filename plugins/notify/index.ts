// fim-notify (reference §4.6): the stored switch, and the start notification it asks for,
// sent with the host's notify-send once the desktop plugin has integrated the application.
import { parseSwitch } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readSlot, SLOTS, updateSlot } from "../../core/reserved.ts";
import { cannotReplay } from "../../lib/track.ts";
import { desktopHooks } from "../desktop/index.ts";

const NAME = "notify";
const NOTIFY_WAIT_MS = 2000;

/** `notify-send` on the host; its absence or failure is only logged. */
async function notify(app: { name: string; icon: string }, log: Logger): Promise<void> {
  cannotReplay("fim-notify is on: every start notifies");
  const tool = Bun.which("notify-send");
  if (!tool) {
    log.debug("Could not find 'notify-send' in PATH: no start notification");
    return;
  }
  try {
    const child = Bun.spawn([tool, "-i", app.icon, `Started '${app.name}' FlatImage`], { stdio: ["ignore", "ignore", "ignore"] });
    // A notifier that hangs (no notification daemon) must not hold the start up.
    let timer: Timer | undefined;
    const code = await Promise.race([child.exited, new Promise<undefined>((resolve) => (timer = setTimeout(resolve, NOTIFY_WAIT_MS)))]);
    clearTimeout(timer);
    if (code === undefined) {
      child.unref();
      log.debug(`notify-send still runs after ${NOTIFY_WAIT_MS} ms; not waiting for it`);
    } else if (code !== 0) log.debug(`notify-send failed with exit code: ${code}`);
  } catch (error) {
    log.debug(`Could not run notify-send: ${(error as Error).message}`);
  }
}

export const notifyPlugin: Plugin = {
  name: NAME,
  requires: ["desktop"],
  apply(runtime) {
    desktopHooks(runtime).integrated.tapPromise(NAME, async (app) => {
      if (readSlot(runtime.image, SLOTS.notify)[0] !== 0) await notify(app, runtime.logger(NAME));
    });

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-notify", {
        name: "fim-notify",
        brief: true,
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
