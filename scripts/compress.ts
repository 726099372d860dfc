// zstd compression for image assembly, cached by the content of what is compressed: the Bun
// runtime part of the launcher (~100 MB, ~45 s at level 19) is the same for every build made
// with one Bun version, so it is compressed once per machine. The zstd command (multi-
// threaded) is used when present, Bun's own zstd otherwise.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { resolve } from "node:path";
import { writable } from "./rootfs.ts";

const root = resolve(import.meta.dir, "..");
const CACHES = ["/var/cache/flatimage-ts/zstd", `${root}/.cache/zstd`, `${tmpdir()}/fim-zstd-${process.getuid?.() ?? 0}`];
/** Entries kept per cache directory (the most recently used). */
const KEEP = 48;
/** Below this, compressing costs less than looking the result up. */
const CACHE_MIN = 1 << 20;

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

function zstdCommand(): string | undefined {
  return Bun.which("zstd") ?? undefined;
}

function compressNow(data: Uint8Array, level: number): Buffer {
  const zstd = zstdCommand();
  if (!zstd) return Buffer.from(Bun.zstdCompressSync(data, { level }));
  const result = Bun.spawnSync([zstd, "-q", `-${level}`, ...(level > 19 ? ["--ultra"] : []), "-T0", "-c"], { stdin: data, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`zstd failed (exit ${result.exitCode}): ${result.stderr.toString()}`);
  return Buffer.from(result.stdout);
}

function sweep(dir: string): void {
  const entries = readdirSync(dir)
    .filter((name) => name.endsWith(".zst"))
    .map((name) => ({ name, used: statSync(`${dir}/${name}`).mtimeMs }))
    .sort((a, b) => b.used - a.used);
  for (const entry of entries.slice(KEEP)) rmSync(`${dir}/${entry.name}`, { force: true });
}

/**
 * One zstd frame of `data` (with its content checksum). A cached result is used only when it
 * decompresses to exactly `data`: a damaged cache can never end up in an image.
 */
export function compress(data: Uint8Array, level: number): Buffer {
  if (data.length < CACHE_MIN) return compressNow(data, level);
  const name = `${sha256(data)}-${level}.zst`;
  for (const dir of CACHES) {
    const path = `${dir}/${name}`;
    if (!existsSync(path)) continue;
    try {
      // (Another build's sweep may remove it meanwhile: then it is compressed again below.)
      const cached = readFileSync(path);
      if (sha256(Bun.zstdDecompressSync(cached)) === sha256(data)) {
        if (writable(dir)) utimesSync(path, new Date(), new Date());
        return cached;
      }
    } catch {
      // damaged: compressed again below
    }
  }
  const frame = compressNow(data, level);
  const dir = CACHES.find((candidate) => writable(candidate));
  if (dir) {
    mkdirSync(dir, { recursive: true });
    const temporary = `${dir}/${name}.${process.pid}.tmp`;
    try {
      writeFileSync(temporary, frame);
      renameSync(temporary, `${dir}/${name}`);
      sweep(dir);
    } catch {
      rmSync(temporary, { force: true });
    }
  }
  return frame;
}

/** Compresses `data` as consecutive frames cut at `cuts` (offsets), each cached on its own. */
export function compressInFrames(data: Uint8Array, cuts: number[], level: number): Buffer {
  const bounds = [0, ...cuts.filter((cut) => cut > 0 && cut < data.length).sort((a, b) => a - b), data.length];
  const frames: Buffer[] = [];
  for (let i = 0; i + 1 < bounds.length; i++) if (bounds[i + 1]! > bounds[i]!) frames.push(compress(data.subarray(bounds[i], bounds[i + 1]), level));
  return Buffer.concat(frames);
}
