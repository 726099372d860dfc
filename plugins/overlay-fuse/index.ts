// The OVERLAYFS overlay type: fuse-overlayfs stacks the layers under <data>/root at
// <mounts>/root, inside the namespace the data directory's runs share; each guest's root is
// bound from there.
import { mkdirSync } from "../../lib/fs.ts";
import type { Plugin } from "../../core/plugin.ts";
import { workDirectory } from "../../core/run-services.ts";
import { registerOverlayType } from "../overlay/index.ts";

const NAME = "overlay-fuse";

export const overlayFusePlugin: Plugin = {
  name: NAME,
  requires: ["overlay"],
  apply(runtime) {
    registerOverlayType(runtime, NAME, { type: "OVERLAYFS", byte: 0x04, summary: "Uses fuse-overlayfs" }, async (launch) => {
      runtime.logger(NAME).debug("Overlay type: FUSE_OVERLAYFS");
      const { mounts, upper } = runtime.paths;
      const work = workDirectory(runtime);
      const mount = `${mounts}/root`;
      mkdirSync(mount, { recursive: true });
      const lower = [...launch.lowerDirs].reverse().join(":"); // fuse-overlayfs lists the top layer first
      const options = [`upperdir=${upper}`, `workdir=${work}`, ...(lower ? [`lowerdir=${lower}`] : [])];
      launch.steps.push({ kind: "run", argv: [await runtime.tool("fuse-overlayfs"), "-o", options.join(","), mount] });
      return { kind: "directory", path: mount };
    });
  },
};
