// EROFS layers: created with mkfs.erofs, mounted with erofsfuse, unpacked with fsck.erofs (all
// from the tool set); their directory tree is read in-process (read.ts).
// The default format (docs/layer-formats.md has the measurements).
import type { LayerCreateRequest, Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { boundToLauncher } from "../../core/run-services.ts";
import { walkErofs } from "./read.ts";
import { runTool } from "./run.ts";

const NAME = "layer-erofs";
const SUPERBLOCK = 1024;
const MAGIC = 0xe0f5e1e2;
/**
 * What fsck.erofs 1.8 says while unpacking that loses nothing a layer needs: attributes with
 * empty values (the kernel overlay's `user.overlay.origin`, meaningless below the upper
 * directory), and `trusted.` attributes a regular user can neither set nor see in a run.
 */
const HARMLESS = [/failed to get xattr value size of `user\.overlay\./, /ignored xattr `trusted\..*due to non-superuser/];

/**
 * FIM_COMPRESSION_LEVEL (0..9) → mkfs.erofs options, from docs/layer-formats.md: lz4hc 12
 * with 64 KiB clusters is the default (reads ~2× faster than zstd at 93 % of its ratio);
 * 0 favours build speed, 8–9 favour size (lzma reads 3–10× slower).
 */
export function compressionOptions(level: number): string[] {
  if (level === 0) return ["-zlz4"];
  if (level <= 3) return ["-zlz4hc,level=9"];
  if (level <= 7) return ["-zlz4hc,level=12", "-C65536", "-Eztailpacking"];
  return ["-zlzma", "-C65536", "-Eztailpacking,fragments"];
}

export function checkSuperblock(head: Buffer, size: number): string | undefined {
  if (head.length < SUPERBLOCK + 40) return `it is shorter than an EROFS superblock (${head.length} bytes)`;
  const blockBits = head[SUPERBLOCK + 12]!;
  if (blockBits < 9 || blockBits > 16) return `its superblock has an invalid block size (2^${blockBits})`;
  const blocks = head.readUInt32LE(SUPERBLOCK + 36);
  const needed = blocks * 2 ** blockBits;
  if (needed > size) return `it is truncated: its superblock needs ${needed} bytes, the layer has ${size}`;
  return undefined;
}

async function create(runtime: Runtime, request: LayerCreateRequest): Promise<void> {
  const mkfs = await boundToLauncher(runtime, "mkfs.erofs");
  // --all-root: inside the sandbox, root in the layer shows up as the user running it.
  const args = [...compressionOptions(request.level), "--all-root", "--quiet", ...request.exclude.map((path) => `--exclude-path=${path}`), request.output, request.source];
  const log = runtime.logger(NAME);
  await runTool(mkfs, args, "mkfs.erofs", { label: "Compressing", sourceBytes: request.bytes, output: request.output, say: (line) => log.info(line) });
}

export const erofsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.layerFormats.tap(NAME, (formats) =>
      formats.set("erofs", {
        name: "erofs",
        detect: (head) => head.length >= SUPERBLOCK + 4 && head.readUInt32LE(SUPERBLOCK) === MAGIC,
        check: checkSuperblock,
        create: (request) => create(runtime, request),
        // erofsfuse returns once the mount is up (it daemonizes after mounting).
        mountCommand: async (layer, mountpoint) => [await runtime.tool("erofsfuse"), `--offset=${layer.offset}`, layer.path, mountpoint],
        walk: (layer, visit) => walkErofs(layer.path, layer.offset, layer.size, visit),
        extract: async (layer, dir) => {
          const fsck = await boundToLauncher(runtime, "fsck.erofs");
          const log = runtime.logger(NAME);
          // --preserve-perms: modes exactly as stored, whatever the umask (a regular user's default applies it).
          const args = [`--offset=${layer.offset}`, `--extract=${dir}`, "--xattrs", "--preserve-perms", layer.path];
          await runTool(fsck, args, "fsck.erofs", { label: "Unpacking", sourceBytes: layer.size, say: (line) => log.info(line) }, { patterns: HARMLESS, debug: (line) => log.debug(line) });
        },
      }),
    );
  },
};
