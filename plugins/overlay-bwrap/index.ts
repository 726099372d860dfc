// The BWRAP overlay type (the default): the kernel's overlay of the mounted layers under
// <data>/root (reference §8.3), mounted once in the namespace every run of the data
// directory shares (bubblewrap's own --overlay would mount one per guest).
import type { Plugin } from "../../core/plugin.ts";
import { mkdirSync } from "../../lib/fs.ts";
import { workDirectory } from "../../core/run-services.ts";
import { registerOverlayType } from "../overlay/index.ts";

const NAME = "overlay-bwrap";

export const overlayBwrapPlugin: Plugin = {
  name: NAME,
  requires: ["overlay"],
  apply(runtime) {
    const log = runtime.logger(NAME);
    registerOverlayType(runtime, NAME, { type: "BWRAP", byte: 0x02, summary: "Uses bubblewrap's kernel overlay (the default)" }, async (launch) => {
      log.debug("Overlay type: BWRAP");
      for (const dir of launch.lowerDirs) log.info(`Overlay layer '${dir}'`);
      const { upper, mounts } = runtime.paths;
      // No layer: the upper directory is the whole root.
      if (launch.lowerDirs.length === 0) return { kind: "directory", path: upper };
      const root = `${mounts}/root`;
      mkdirSync(root, { recursive: true });
      // The kernel lists the top layer first; ":" and "," in a path are escaped with a
      // backslash. userxattr: its marks (opaque, redirect) as user.overlay.* xattrs, as bwrap does.
      const escape = (path: string) => path.replace(/[\\:,]/g, "\\$&");
      const options = [`lowerdir=${[...launch.lowerDirs].reverse().map(escape).join(":")}`, `upperdir=${escape(upper)}`, `workdir=${escape(workDirectory(runtime))}`, "userxattr"];
      launch.steps.push({ kind: "mount", type: "overlay", source: "overlay", options: options.join(","), target: root });
      return { kind: "directory", path: root };
    });
  },
};
