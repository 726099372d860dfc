// alpine: Alpine Linux 3.22 from its minirootfs tarball (bundles/alpine/rootfs.ts).
import type { Bundle } from "../../core/plugin.ts";
import { UPSTREAM_REMOTE } from "../../plugins/remote/index.ts";
import { commonPlugins } from "../common.ts";

const bundle: Bundle = {
  name: "alpine",
  distribution: "ALPINE",
  plugins: [...commonPlugins],
  remote: UPSTREAM_REMOTE,
  installCommand: (packages) => ["apk", "add", "--no-cache", "--update-cache", "--no-progress", ...packages],
};

export default bundle;
