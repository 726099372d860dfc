// The BWRAP overlay type (the default): bubblewrap's kernel overlay of the mounted layers
// under <data>/root (reference §8.3).
import type { Plugin } from "../../core/plugin.ts";
import { effectiveOverlay, lockDataDirectory, workDirectory } from "../overlay/index.ts";

const NAME = "overlay-bwrap";

export const overlayBwrapPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.overlay.tapPromise(NAME, async (launch) => {
      if (effectiveOverlay(runtime) !== "BWRAP") return undefined;
      log.debug("Overlay type: BWRAP");
      await lockDataDirectory(runtime, launch);
      const work = await workDirectory(runtime, launch);
      for (const dir of launch.lowerDirs) log.info(`Overlay layer '${dir}'`);
      launch.rootOps =
        launch.lowerDirs.length === 0
          ? [["--bind", runtime.paths.upper, "/"]] // no layer: the upper directory is the whole root
          : [...launch.lowerDirs.map((dir) => ["--overlay-src", dir]), ["--overlay", runtime.paths.upper, work, "/"]];
      return true;
    });
  },
};
