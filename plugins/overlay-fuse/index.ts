// The OVERLAYFS overlay type: fuse-overlayfs stacks the layers under <data>/root at
// <instance>/mount, inside the run's namespace; the guest's root is bound from there.
import { mkdirSync } from "node:fs";
import type { Plugin } from "../../core/plugin.ts";
import { effectiveOverlay, lockDataDirectory, workDirectory } from "../overlay/index.ts";

const NAME = "overlay-fuse";

export const overlayFusePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.overlay.tapPromise(NAME, async (launch) => {
      if (effectiveOverlay(runtime) !== "OVERLAYFS") return undefined;
      log.debug("Overlay type: FUSE_OVERLAYFS");
      await lockDataDirectory(runtime, launch);
      const { instance, upper } = runtime.paths;
      const work = await workDirectory(runtime, launch);
      const mount = `${instance}/mount`;
      mkdirSync(mount, { recursive: true });
      const lower = [...launch.lowerDirs].reverse().join(":"); // fuse-overlayfs lists the top layer first
      const options = [`upperdir=${upper}`, `workdir=${work}`, ...(lower ? [`lowerdir=${lower}`] : [])];
      launch.steps.push([await runtime.tool("fuse-overlayfs"), "-o", options.join(","), mount]);
      launch.rootOps = [["--bind", mount, "/"]];
      return true;
    });
  },
};
