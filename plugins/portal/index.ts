// The portal (reference §10): `fim_portal <program> [args…]` in the guest runs the program
// on the host, when the image allows it (`fim-portal allow`, allowlist.ts). Its daemon
// (fim_portal --daemon, started beside the sandbox) listens on a unix socket in the
// instance's private directory, serves only processes of this instance's pid namespace,
// and gets the list in its argv, so nothing the guest can write decides what it runs.
// stdin/stdout/stderr are passed as descriptors, so streams have no size limit and calls
// may run concurrently. It ends with the run, and ends what it started.
import { consoleLevel } from "../../core/log.ts";
import type { Paths } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import { guestDir } from "../identity/index.ts";
import { CLOSED, readPolicy, type PortalPolicy } from "./allowlist.ts";
import { portalCommand } from "./command.ts";

const NAME = "portal";

/**
 * The host's PATH as the user had it: without the runtime's own tool directories (added
 * for the runtime's processes) and without relative entries, which would depend on the
 * directory a program is looked up from.
 */
export function hostPath(paths: Pick<Paths, "bin" | "sbin">, path = process.env.PATH ?? ""): string {
  const dirs = path.split(":").filter((dir) => dir.startsWith("/") && dir !== paths.bin && dir !== paths.sbin);
  return [...new Set(dirs)].join(":");
}

/** The daemon's policy arguments. */
export function policyArgs(policy: PortalPolicy): string[] {
  return policy.all ? ["--all"] : policy.programs.flatMap((program) => ["--allow", program]);
}

export const portalPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) => commands.set("fim-portal", portalCommand(runtime)));

    runtime.hooks.portal.tapPromise(NAME, async (launch) => {
      const portal = await runtime.tool("fim_portal");
      // In the directory the guest sees (read-only): it connects, it cannot replace it.
      const socket = `${guestDir(runtime.paths.instance)}/portal.sock`;
      let policy: PortalPolicy;
      try {
        policy = readPolicy(runtime.image);
      } catch (error) {
        // A damaged list must not open the portal: it stays closed, and says why (at the
        // level a run shows, as for damaged permission bits).
        const level = consoleLevel() === "C" ? "C" : "W";
        runtime.logger(NAME).at(level, `${(error as Error).message}: the portal allows no program ('fim-portal clear' resets the list)`);
        policy = CLOSED;
      }
      launch.companions.push([
        portal, "--daemon", socket, `${runtime.paths.instance}/holder.json`,
        // The image's path (named in refusals) comes from FIM_BIN_SELF in its environment.
        "--path", hostPath(runtime.paths), ...policyArgs(policy),
      ]);
      launch.env.FIM_PORTAL_SOCKET = socket;
    });
  },
};
