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
  // Package lists, downloaded packages and debconf's backup copies (it rewrites them on
  // every install); the package database (var/lib/dpkg, debconf's current files) stays.
  commitExcludes: ["var/lib/apt/lists", "var/cache/apt", "var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old"],
  packageEntry: /^var\/lib\/dpkg\/info\/([^/:]+)(?::[^/]+)?\.list$/,
};

export default bundle;
