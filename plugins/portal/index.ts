// The portal (reference §10): `fim_portal <program> [args…]` in the guest runs the program
// on the host. Its daemon (fim_portal --daemon, started beside the sandbox) listens on a
// unix socket in the instance's private directory and serves only processes of this
// instance's pid namespace; stdin/stdout/stderr are passed as descriptors, so streams have
// no size limit and calls may run concurrently. It ends with the run.
import type { Plugin } from "../../core/plugin.ts";
import { guestDir } from "../identity/index.ts";

const NAME = "portal";

export const portalPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.portal.tapPromise(NAME, async (launch) => {
      const portal = await runtime.tool("fim_portal");
      // In the directory the guest sees (read-only): it connects, it cannot replace it.
      const socket = `${guestDir(runtime.paths.instance)}/portal.sock`;
      launch.companions.push([portal, "--daemon", socket, `${runtime.paths.instance}/holder.json`]);
      launch.env.FIM_PORTAL_SOCKET = socket;
    });
  },
};
