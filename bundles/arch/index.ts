// arch: Arch Linux from its bootstrap tarball (bundles/arch/rootfs.ts).
import type { Bundle } from "../../core/plugin.ts";
import { UPSTREAM_REMOTE } from "../../plugins/remote/index.ts";
import { commonPlugins } from "../common.ts";

const bundle: Bundle = {
  name: "arch",
  distribution: "ARCH",
  plugins: [...commonPlugins],
  remote: UPSTREAM_REMOTE,
  installCommand: (packages) => ["pacman", "-Syu", "--noconfirm", "--needed", ...packages],
};

export default bundle;
