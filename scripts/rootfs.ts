// Builds a bundle's root filesystem layer: bundles/<name>/rootfs.ts fills a directory
// (`bootstrap(dir, progress)`), then mkfs.erofs makes it a layer. The layer is cached under
// .cache/rootfs by the hash of the bootstrap script, so rebuilding an image is quick.
import { accessSync, constants, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { compressionOptions } from "../plugins/layer-erofs/index.ts";
import { runTool } from "../plugins/layer-erofs/run.ts";

export interface RootfsModule {
  /** Fills `dir` with the distribution's root filesystem; throws naming the failed step. */
  bootstrap(dir: string, progress: (text: string) => void): Promise<void>;
  /** What else the result depends on (e.g. the tarball used), for the cache key. */
  cacheKey?(): string;
}

const root = resolve(import.meta.dir, "..");

/** Whether `dir` exists (it is created if it can be) and this user can write to it. */
export function writable(dir: string): boolean {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Bytes of file data below `dir` (the progress of compressing it). */
function treeBytes(dir: string): number {
  let bytes = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) bytes += treeBytes(path);
    else if (entry.isFile()) bytes += lstatSync(path, { throwIfNoEntry: false })?.size ?? 0; // a name that is not UTF-8 is not found: only the estimate suffers
  }
  return bytes;
}

export async function rootfsLayer(bundle: string, script: string, toolsDir: string, work: string, progress: (text: string) => void): Promise<string> {
  const module = (await import(script)) as RootfsModule;
  const hash = new Bun.CryptoHasher("sha256").update(readFileSync(script)).update(module.cacheKey?.() ?? "").update(compressionOptions(7).join(" ")).digest("hex").slice(0, 16);
  const name = `${bundle}-${hash}.layer`;
  // A machine-wide cache (fresh clones, e.g. CI, reuse it), the checkout's, or a private one
  // for a user who can write to neither.
  const caches = ["/var/cache/flatimage-ts/rootfs", `${root}/.cache/rootfs`, `${tmpdir()}/fim-rootfs-${process.getuid?.() ?? 0}`];
  for (const dir of caches) {
    if (existsSync(`${dir}/${name}`) && process.env.FIM_REBUILD_ROOTFS !== "1") {
      progress(`root filesystem of '${bundle}': cached (${dir}/${name})`);
      return `${dir}/${name}`;
    }
  }
  const cacheDir = caches.find((dir) => writable(dir)) ?? caches[2]!;
  const cached = `${cacheDir}/${name}`;
  const mkfs = `${toolsDir}/bin/mkfs.erofs`;
  if (!existsSync(mkfs)) throw new Error(`the root filesystem layer needs ${mkfs}: build the tool set first (toolset/build.sh)`);
  const dir = `${work}/rootfs`;
  mkdirSync(dir, { recursive: true });
  progress(`root filesystem of '${bundle}': bootstrapping`);
  await module.bootstrap(dir, (text) => progress(`root filesystem of '${bundle}': ${text}`));
  progress(`root filesystem of '${bundle}': compressing`);
  mkdirSync(cacheDir, { recursive: true });
  const temporary = `${cached}.${process.pid}.tmp`;
  try {
    try {
      const progressOf = { label: `root filesystem of '${bundle}': compressing`, sourceBytes: treeBytes(dir), output: temporary, say: progress };
      await runTool([mkfs], [...compressionOptions(7), "--all-root", "--quiet", temporary, dir], "mkfs.erofs", progressOf);
    } catch (error) {
      throw new Error(`${(error as Error).message} on the root filesystem of '${bundle}'`);
    }
    renameSync(temporary, cached);
    // Layers of earlier versions of this bundle's bootstrap are no longer used.
    for (const old of readdirSync(cacheDir)) if (old.startsWith(`${bundle}-`) && old.endsWith(".layer") && old !== name) rmSync(`${cacheDir}/${old}`, { force: true });
  } finally {
    rmSync(temporary, { force: true });
    rmSync(dir, { recursive: true, force: true });
  }
  return cached;
}
