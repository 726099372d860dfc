// The cache of extracted layers: <dir>/<key> holds a layer's files (the kernel overlay's
// lower directory), <key>.size its size in bytes, <key>.lock a lock held shared by every run
// using it (exclusively while it is extracted or removed). The key is the layer's sha256;
// <dir>/keys.json remembers the keys of layer files by identity, so a layer is hashed once.
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, statfsSync, statSync, utimesSync, writeFileSync } from "../../lib/fs.ts";
import { dirname } from "../../lib/path.ts";
import { FimError } from "../../core/errors.ts";
import { flock, LOCK_EX, LOCK_SH, tryLockExclusive } from "../../core/libc.ts";
import type { LayerRecord } from "../../core/image.ts";
import { entriesOf } from "../../core/paths.ts";
import { alive } from "../../core/proc.ts";
import { removeAll, removeTree, treeSize } from "../../core/tree.ts";

/** FIM_LAYER_CACHE_MAX, in MiB. */
export const DEFAULT_LIMIT_MIB = 4096;
const TMPFS_MAGIC = 0x01021994;
const KEYS_KEPT = 256;
/** Extracted layers are about this many times their compressed size (lz4hc). */
const EXPANSION = 3;

export function cacheLimit(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.FIM_LAYER_CACHE_MAX;
  const mib = value !== undefined && /^\d+$/.test(value) ? Number(value) : DEFAULT_LIMIT_MIB;
  return mib * 1048576;
}

/** Where extracted layers may be: beside the builds (tmpfs when the stub chose one), or the user's cache. */
export function cacheDirs(app: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const cache = env.XDG_CACHE_HOME?.startsWith("/") ? env.XDG_CACHE_HOME : env.HOME?.startsWith("/") ? `${env.HOME}/.cache` : undefined;
  return [`${dirname(app)}/layers`, ...(cache ? [`${cache}/fim/layers`] : [])];
}

function room(dir: string): { bytes: number; tmpfs: boolean } {
  let probe = dir;
  while (!existsSync(probe) && probe !== "/") probe = dirname(probe);
  const info = statfsSync(probe);
  return { bytes: info.bavail * info.bsize, tmpfs: info.type === TMPFS_MAGIC };
}

/** The first directory with room for `bytes` (tmpfs is kept for half its free space at most). */
export function chooseDir(dirs: string[], bytes: number): string | undefined {
  return dirs.find((dir) => {
    try {
      const { bytes: free, tmpfs } = room(dir);
      return free > (tmpfs ? 2 * bytes : bytes + (64 << 20));
    } catch {
      return false;
    }
  });
}

function identity(layer: LayerRecord): string {
  const info = statSync(layer.path, { bigint: true });
  return [layer.path, info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs, layer.offset, layer.size].join("|");
}

function readKeys(file: string): Record<string, string> {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as Record<string, string>;
  } catch {
    return {};
  }
}

/** The layer's sha256 (its first 32 digits), from keys.json when the file has not changed. */
export function layerKey(dir: string, layer: LayerRecord): string {
  const file = `${dir}/keys.json`;
  const keys = readKeys(file);
  const id = identity(layer);
  const known = keys[id];
  if (known && /^[0-9a-f]{32}$/.test(known)) return known;
  const hash = new Bun.CryptoHasher("sha256");
  const fd = openSync(layer.path, "r");
  try {
    const buffer = Buffer.allocUnsafe(8 << 20);
    for (let done = 0; done < layer.size; ) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, layer.size - done), layer.offset + done);
      if (n === 0) throw new FimError(`Layer '${layer.path}' ends before its recorded size`);
      hash.update(buffer.subarray(0, n));
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  const key = hash.digest("hex").slice(0, 32);
  const entries = Object.entries({ ...keys, [id]: key }).slice(-KEYS_KEPT);
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(Object.fromEntries(entries)));
  renameSync(temporary, file);
  return key;
}

export interface Extracted {
  dir: string;
  /** Descriptor of its lock, held shared. */
  lock: number;
  /** Whether this call extracted it. */
  fresh: boolean;
}

/** The existing extraction of `key` in any of `dirs`. */
export function findExtracted(dirs: string[], key: string): string | undefined {
  return dirs.map((dir) => `${dir}/${key}`).find((path) => existsSync(path));
}

/**
 * The layer's files in `dir`/<key>, extracted by `extract(temporary)` unless they are there;
 * returns with the entry's lock held shared. Concurrent runs extract once: the extraction
 * happens under the lock taken exclusively, into a temporary directory renamed into place.
 */
export function ensureExtracted(dir: string, key: string, extract: (temporary: string) => void): Extracted {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = `${dir}/${key}`;
  for (let attempt = 0; ; attempt++) {
    const lock = openSync(`${target}.lock`, "a", 0o600);
    let fresh = false;
    try {
      if (existsSync(target)) flock(lock, LOCK_SH);
      else {
        flock(lock, LOCK_EX);
        if (!existsSync(target) && fstatSync(lock).nlink > 0) {
          const temporary = `${target}.${process.pid}.tmp`;
          removeAll(temporary);
          try {
            extract(temporary);
            writeFileSync(`${target}.size`, String(treeSize(temporary)));
            renameSync(temporary, target);
          } catch (error) {
            removeAll(temporary); // a guest's unwritable directories too: the error is the extraction's
            throw error;
          }
          fresh = true;
        }
        flock(lock, LOCK_SH);
      }
      // A removal may have won the race (it unlinks the lock): then again, with a new lock.
      if (fstatSync(lock).nlink > 0 && existsSync(target)) {
        const now = new Date();
        utimesSync(`${target}.lock`, now, now);
        return { dir: target, lock, fresh };
      }
    } catch (error) {
      closeSync(lock);
      throw error;
    }
    closeSync(lock);
    if (attempt >= 3) throw new FimError(`Could not keep the extracted layer '${target}': it was removed by another process`);
  }
}

export interface CachedLayer {
  path: string;
  used: number;
  size: number;
}

export function cachedLayers(dirs: string[]): CachedLayer[] {
  const found: CachedLayer[] = [];
  for (const dir of dirs) {
    for (const name of entriesOf(dir).filter((entry) => /^[0-9a-f]{32}$/.test(entry))) {
      const path = `${dir}/${name}`;
      let used = 0;
      let size = 0;
      try {
        used = statSync(`${path}.lock`).mtimeMs;
      } catch {
        // no lock yet
      }
      try {
        size = Number(readFileSync(`${path}.size`, "utf8")) || 0;
      } catch {
        size = treeSize(path);
      }
      found.push({ path, used, size });
    }
  }
  return found;
}

/**
 * Leftovers of extractions that were killed (<key>.<pid>.tmp, a whole layer's files, and
 * keys.json.<pid>.tmp): nothing else ever removes them. One is removed when its process is
 * gone, or when no run extracts its key (the key's lock can be taken exclusively: its PID may
 * have been reused).
 */
export function sweepTemporaries(dir: string): string[] {
  const removed: string[] = [];
  for (const name of entriesOf(dir)) {
    const match = /^(?:([0-9a-f]{32})|keys\.json)\.(\d+)\.tmp$/.exec(name);
    if (!match || Number(match[2]) === process.pid) continue;
    let stale = !alive(Number(match[2]));
    let lock: number | undefined;
    try {
      if (!stale && match[1]) {
        lock = openSync(`${dir}/${match[1]}.lock`, "r");
        stale = tryLockExclusive(lock);
      }
    } catch {
      // no lock file: its process decides
    }
    if (stale && removeAll(`${dir}/${name}`)) removed.push(`${dir}/${name}`); // else left for the next sweep
    if (lock !== undefined) closeSync(lock); // releases the lock
  }
  return removed;
}

/** Removes an extracted layer unless a run uses it. */
export function removeCachedLayer(path: string): boolean {
  let lock: number;
  try {
    lock = openSync(`${path}.lock`, "a", 0o600);
  } catch {
    return false;
  }
  try {
    if (!tryLockExclusive(lock)) return false;
    const removed = removeTree(path);
    if (removed) {
      rmSync(`${path}.size`, { force: true });
      rmSync(`${path}.lock`, { force: true });
    }
    return removed;
  } finally {
    closeSync(lock);
  }
}

export function layerInUse(path: string): boolean {
  let lock: number;
  try {
    lock = openSync(`${path}.lock`, "r");
  } catch {
    return false;
  }
  try {
    return !tryLockExclusive(lock);
  } finally {
    closeSync(lock);
  }
}

/** Keeps the cache under `limit` bytes: the least recently used layers not in use go first. */
export function evict(dirs: string[], limit: number, keep: Set<string>): string[] {
  const layers = cachedLayers(dirs).sort((a, b) => a.used - b.used);
  let total = layers.reduce((sum, layer) => sum + layer.size, 0);
  const removed: string[] = [];
  for (const layer of layers) {
    if (total <= limit) break;
    if (keep.has(layer.path) || !removeCachedLayer(layer.path)) continue;
    total -= layer.size;
    removed.push(layer.path);
  }
  return removed;
}

export const estimatedSize = (layer: LayerRecord) => layer.size * EXPANSION;
