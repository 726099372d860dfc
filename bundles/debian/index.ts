// debian: Debian 12 (bookworm) minbase as layer 0 (bundles/debian/rootfs.ts), with apt set up
// to work as root inside the sandbox, so `fim-root apt-get install …` then `fim-layer commit`
// package an application.
import type { Bundle } from "../../core/plugin.ts";
import { commonPlugins } from "../common.ts";

const bundle: Bundle = {
  name: "debian",
  distribution: "DEBIAN",
  plugins: [...commonPlugins],
  installCommand: (packages) => ["sh", "-c", 'apt-get update && apt-get install -y "$@"', "apt", ...packages],
};

export default bundle;
