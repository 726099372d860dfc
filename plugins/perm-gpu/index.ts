// gpu: DRI render nodes and NVIDIA device nodes, and the host's NVIDIA driver files linked
// into the guest at their usual paths (reference §9.3). The links live in a per-run
// directory stacked as the top lower layer, so, unlike upstream's links written into
// <data>/root, they never persist and never end up in a committed layer.
import { existsSync, lstatSync, mkdirSync, readdirSync, realpathSync, symlinkSync } from "node:fs";
import { dirname } from "node:path";
import type { Plugin } from "../../core/plugin.ts";
import { grantedPermissions, permissionMapper } from "../perms/index.ts";

const DRIVER_FILES: [dir: string, keywords: string[]][] = [
  ["/usr/lib", ["nvidia", "cuda", "nvcuvid", "nvoptix"]],
  ["/usr/lib/x86_64-linux-gnu", ["nvidia", "cuda", "nvcuvid", "nvoptix"]],
  ["/usr/lib/i386-linux-gnu", ["nvidia", "cuda", "nvcuvid", "nvoptix"]],
  ["/usr/bin", ["nvidia"]],
  ["/usr/share", ["nvidia"]],
  ["/usr/share/vulkan/icd.d", ["nvidia"]],
  ["/usr/lib32", ["nvidia", "cuda"]],
];
const EXCLUDED = /gst|icudata|egl-wayland/;

const devices = permissionMapper("gpu", () => {
  let nvidia: string[] = [];
  try {
    nvidia = readdirSync("/dev").filter((name) => name.includes("nvidia"));
  } catch {
    // no /dev listing: nothing more to bind
  }
  return [["--dev-bind-try", "/dev/dri", "/dev/dri"], ...nvidia.map((name) => ["--dev-bind-try", `/dev/${name}`, `/dev/${name}`])];
});

/** Host driver files to link: [path in the guest, target through the host's root]. */
export function driverLinks(hostRoot: string, log: { debug(m: string): void; error(m: string): void }): [string, string][] {
  const links: [string, string][] = [];
  for (const [dir, keywords] of DRIVER_FILES) {
    if (!existsSync(dir)) {
      log.error(`Search path does not exist: '${dir}'`);
      continue;
    }
    for (const name of readdirSync(dir)) {
      const path = `${dir}/${name}`;
      if (!keywords.some((keyword) => name.includes(keyword)) || EXCLUDED.test(path)) continue;
      try {
        if (lstatSync(path).isDirectory()) continue;
        const target = `${hostRoot}${realpathSync(path)}`;
        log.debug(`PERM(NVIDIA): ${path} -> ${target}`);
        links.push([path, target]);
      } catch {
        // a dangling link on the host: nothing to point at
      }
    }
  }
  return links;
}

export const gpuPermission: Plugin = {
  name: "perm-gpu",
  apply(runtime) {
    devices.apply(runtime);
    const log = runtime.logger("perm-gpu");
    // After the layers (stage 10): the links go on top of them.
    runtime.hooks.mount.tapPromise({ name: "perm-gpu", stage: 10 }, async (launch) => {
      if (!grantedPermissions(runtime).has("gpu")) return;
      const links = driverLinks(runtime.paths.runtimeHost, log);
      if (links.length === 0) return;
      const top = `${runtime.paths.instance}/gpu`;
      for (const [path, target] of links) {
        mkdirSync(dirname(`${top}${path}`), { recursive: true });
        symlinkSync(target, `${top}${path}`);
      }
      launch.lowerDirs.push(top);
    });
  },
};
