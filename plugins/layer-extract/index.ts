// A way in without FUSE (containers, some CI): when /dev/fuse cannot be used (or
// FIM_NO_FUSE=1), each layer is extracted once with the embedded fsck.erofs into a per-user
// cache keyed by the layer's content (beside the builds, on tmpfs when the stub chose one
// and there is room, else ~/.cache/fim/layers), and the run stacks those directories with
// the kernel's overlay (the BWRAP type; OVERLAYFS, UNIONFS and casefold need FUSE). The
// extraction runs as root of a user namespace, so owners, whiteouts (0/0 devices) and
// extended attributes come out as the kernel overlay expects them. The cache is bounded
// (FIM_LAYER_CACHE_MAX MiB, default 4096): the least recently used layers no run uses go.
import { closeSync, mkdirSync } from "../../lib/fs.ts";
import { release } from "../../lib/node.ts";
import { FimError } from "../../core/errors.ts";
import type { Launch } from "../../core/launch.ts";
import { keepAcrossExec } from "../../core/libc.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { discoverLayers, type Layer } from "../layer/discover.ts";
import { kernelOverlayInUserns } from "../overlay/index.ts";
import { registerCache } from "../runtime-dir/index.ts";
import { sweepRemovals } from "../../core/tree.ts";
import { cachedLayers, cacheDirs, cacheLimit, chooseDir, ensureExtracted, estimatedSize, evict, findExtracted, layerInUse, layerKey, removeCachedLayer, sweepTemporaries } from "./cache.ts";
import { fuseStatus } from "./fuse.ts";

const NAME = "layer-extract";
/** After the host checks (the sandbox plugin's, stage -100), before mount-layers plans FUSE mounts. */
const STAGE = -50;

const extractedRuns = new WeakSet<Launch>();

/** Whether the run's layers are extracted directories (mount-layers then mounts nothing). */
export function layersExtracted(launch: Launch): boolean {
  return extractedRuns.has(launch);
}

const mib = (bytes: number) => `${Math.round(bytes / 1048576)} MiB`;

function extractCommand(bwrap: string, fsck: string, layer: Layer, temporary: string): string[] {
  // Root of a user namespace: owners are kept (root in the layer is the user outside), and
  // whiteouts can be made. A killed launcher takes the extraction with it.
  return [bwrap, "--die-with-parent", "--unshare-user", "--uid", "0", "--gid", "0", "--dev-bind", "/", "/", "--", fsck, `--extract=${temporary}`, `--offset=${layer.offset}`, "--xattrs", layer.path];
}

async function extractLayers(runtime: Runtime, launch: Launch, why: string): Promise<void> {
  const log = runtime.logger(NAME);
  const layers = await discoverLayers(runtime, log);
  const dirs = cacheDirs(runtime.paths.app);
  mkdirSync(dirs[0]!, { recursive: true, mode: 0o700 });
  for (const dir of dirs) {
    for (const removed of sweepTemporaries(dir)) log.debug(`Removed '${removed}' (left by a killed extraction)`);
    sweepRemovals(dir);
  }
  const [bwrap, fsck] = await Promise.all([runtime.tool("bwrap"), runtime.tool("fsck.erofs")]);
  const used = new Set<string>();
  let extracted = 0;
  let where = "";
  for (const layer of layers) {
    if (layer.format.name !== "erofs") throw new FimError(`Without FUSE, only EROFS layers can be extracted ('${layer.path}' is ${layer.format.name})`, { level: "C" });
    const key = layerKey(dirs[0]!, layer);
    const existing = findExtracted(dirs, key);
    const dir = existing ? existing.slice(0, existing.lastIndexOf("/")) : chooseDir(dirs, estimatedSize(layer));
    if (!dir) throw new FimError(`There is no room to extract the layer '${layer.path}' (about ${mib(estimatedSize(layer))}) in ${dirs.join(" or ")}`, { level: "C" });
    const entry = ensureExtracted(dir, key, (temporary) => {
      log.debug(`Extracting the layer at offset ${layer.offset} of '${layer.path}' to '${temporary}'`);
      const result = Bun.spawnSync(extractCommand(bwrap, fsck, layer, temporary), { stdout: "pipe", stderr: "pipe" });
      if (result.exitCode !== 0) {
        const output = `${result.stdout.toString()}${result.stderr.toString()}`.trim().split("\n").slice(-5).join("; ");
        throw new FimError(`Could not extract the layer '${layer.path}' (offset ${layer.offset}): fsck.erofs exited with ${result.exitCode}: ${output}`, { level: "C" });
      }
    });
    // The run's supervisor keeps it in use until the run ends; the guest does not inherit it.
    keepAcrossExec(entry.lock);
    launch.heldFds.push(entry.lock);
    launch.defer(() => closeSync(entry.lock));
    used.add(entry.dir);
    if (entry.fresh) {
      extracted++;
      where = dir;
    }
    launch.lowerDirs.push(entry.dir);
  }
  extractedRuns.add(launch);
  if (extracted > 0) {
    // Runs show only C lines, and this should be seen once: when layers are extracted.
    log.critical(
      `FUSE cannot be used (${why}): ${extracted} layer(s) were extracted to '${where}' instead of mounted (once per layer), and the run stacks them with the kernel's overlay. FIM_LAYER_CACHE_MAX (MiB, default 4096) bounds that cache; 'fim-cache clear' empties it`,
    );
    for (const removed of evict(dirs, cacheLimit(), used)) log.debug(`Removed the extracted layer '${removed}' (cache limit)`);
  } else {
    log.debug(`FUSE cannot be used (${why}): using the extracted layers ${[...used].join(", ")}`);
  }
}

export const layerExtractPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.mount.tapPromise({ name: NAME, stage: STAGE }, async (launch) => {
      const fuse = fuseStatus(runtime);
      if (fuse.usable) return;
      if (!kernelOverlayInUserns(release())) {
        throw new FimError(
          `Neither FUSE nor the kernel's overlay can stack the image's layers here: FUSE cannot be used (${fuse.why}), and this kernel (${release()}) cannot mount overlays in a user namespace (Linux 5.11 and later can). Make /dev/fuse usable ('modprobe fuse', the device 10:229 readable and writable by the user), or run on a newer kernel`,
          { level: "C" },
        );
      }
      await extractLayers(runtime, launch, fuse.why);
    });

    registerCache(
      (rt) =>
        cachedLayers(cacheDirs(rt.paths.app)).map((layer) => ({
          path: layer.path,
          used: layer.used,
          size: () => layer.size,
          remove: () => removeCachedLayer(layer.path),
          inUse: () => layerInUse(layer.path),
        })),
      (rt) => cacheDirs(rt.paths.app),
    );
  },
};
