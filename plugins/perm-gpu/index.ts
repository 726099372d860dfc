// gpu: DRI render nodes and NVIDIA device nodes, and the host's NVIDIA driver files bound
// read-only at their usual paths (reference §9.3). Their mount points are empty files in a
// directory stacked as the top lower layer, so nothing is created in the data directory and
// nothing ends up in a committed layer.
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, realpathSync } from "../../lib/fs.ts";
import { dirname } from "../../lib/path.ts";
import { MOUNT_STAGE, type SandboxOp } from "../../core/launch.ts";
import { permissionMapper } from "../perms/index.ts";

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

/** Host driver files to bind: [path in the guest, the host file it resolves to]. */
export function driverFiles(log: { debug(m: string): void; error(m: string): void }): [string, string][] {
  const files: [string, string][] = [];
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
        const target = realpathSync(path);
        log.debug(`PERM(NVIDIA): ${path} -> ${target}`);
        files.push([path, target]);
      } catch {
        // a dangling link on the host: nothing to bind
      }
    }
  }
  return files;
}

const mountPoints = (mounts: string) => `${mounts}/gpu`;

export const gpuPermission = permissionMapper(
  { name: "gpu", bit: 10, order: 0 },
  ({ runtime, log }) => {
    let nvidia: string[] = [];
    try {
      nvidia = readdirSync("/dev").filter((name) => name.includes("nvidia"));
    } catch {
      // no /dev listing: nothing more to bind
    }
    return [
      { op: "bind", mode: "dev", source: "/dev/dri", dest: "/dev/dri", optional: true },
      ...nvidia.map((name): SandboxOp => ({ op: "bind", mode: "dev", source: `/dev/${name}`, dest: `/dev/${name}`, optional: true })),
      // Only those whose mount point the mount step made.
      ...driverFiles(log)
        .filter(([path]) => existsSync(`${mountPoints(runtime.paths.mounts)}${path}`))
        .map(([path, target]): SandboxOp => ({ op: "bind", mode: "ro", source: target, dest: path })),
    ];
  },
  {
    extra(runtime) {
      const log = runtime.logger("perm-gpu");
      // After the layers: the mount points go on top of them.
      runtime.hooks.mount.tapPromise({ name: "perm-gpu", stage: MOUNT_STAGE.extraLayers }, async (launch) => {
        if (!launch.facts.permissions.has("gpu")) return;
        const files = driverFiles(log);
        if (files.length === 0) return;
        const top = mountPoints(runtime.paths.mounts);
        for (const [path] of files) {
          mkdirSync(dirname(`${top}${path}`), { recursive: true });
          closeSync(openSync(`${top}${path}`, "w"));
        }
        launch.lowerDirs.push(top);
      });
    },
  },
);
