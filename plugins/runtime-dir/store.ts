// What lives in the per-user runtime directories: one directory per build (the launcher, the
// glibc it runs on and the tools the stub and the tools plugin extract), each with a lock
// file held shared by every process of the build while it runs. Kept only for the builds
// used most recently; one in use is never removed.
import { closeSync, lstatSync, openSync, statSync, type Stats } from "../../lib/fs.ts";
import { dirname, join } from "../../lib/path.ts";
import { tryLockExclusive } from "../../core/libc.ts";
import { entriesOf } from "../../core/paths.ts";
import { alive } from "../../core/proc.ts";
import { removeTree, sweepRemovals } from "../../core/tree.ts";

/** Builds kept by the automatic sweep (the current one included). */
export const KEEP_BUILDS = 3;
/** A build directory of the earlier layout (no lock file) counts as in use for this long after it was last touched. */
const UNLOCKED_GRACE_MS = 24 * 3600 * 1000;
const BUILD_ID = /^[A-Za-z0-9_.-]+_\d{14}_[0-9a-f]{12}$/;

function ownDirectory(path: string): Stats | undefined {
  try {
    const info = lstatSync(path);
    return info.isDirectory() && info.uid === process.getuid?.() ? info : undefined;
  } catch {
    return undefined;
  }
}

/** The per-user runtime directories the stub may have used (toolset/src/fim_stub.c), plus `current`'s. */
export function runtimeRoots(current: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const uid = process.getuid?.() ?? 0;
  const candidates = [
    env.XDG_RUNTIME_DIR ? `${env.XDG_RUNTIME_DIR}/fim/app` : undefined,
    `/tmp/fim/app/${uid}`,
    env.XDG_CACHE_HOME?.startsWith("/") ? `${env.XDG_CACHE_HOME}/fim/app` : env.HOME?.startsWith("/") ? `${env.HOME}/.cache/fim/app` : undefined,
    dirname(current),
  ];
  return [...new Set(candidates.filter((dir): dir is string => dir !== undefined && ownDirectory(dir) !== undefined))];
}

export interface Build {
  path: string;
  /** When a process of the build last started (its lock file's time), in ms. */
  used: number;
  /** Whether it has a lock file (builds of the earlier layout have none). */
  locked: boolean;
}

function lastTouched(path: string): number {
  let newest = 0;
  for (const sub of ["", "bin", "instance"]) {
    try {
      newest = Math.max(newest, statSync(join(path, sub)).mtimeMs);
    } catch {
      // absent
    }
  }
  return newest;
}

export function builds(root: string): Build[] {
  const found: Build[] = [];
  for (const name of entriesOf(root)) {
    const path = join(root, name);
    if (!BUILD_ID.test(name) || !ownDirectory(path)) continue;
    try {
      found.push({ path, used: statSync(join(path, ".lock")).mtimeMs, locked: true });
    } catch {
      found.push({ path, used: lastTouched(path), locked: false });
    }
  }
  return found;
}

function withLock<T>(build: Build, locked: () => T, busy: T): T {
  let fd: number;
  try {
    fd = openSync(join(build.path, ".lock"), "r");
  } catch {
    return busy;
  }
  try {
    return tryLockExclusive(fd) ? locked() : busy;
  } finally {
    closeSync(fd); // releases the lock
  }
}

/** A build of the earlier layout (no lock) is in use while an instance of it runs, and for a day after it was last touched. */
function unlockedInUse(build: Build, now: number): boolean {
  if (entriesOf(join(build.path, "instance")).some((pid) => /^\d+$/.test(pid) && alive(Number(pid)))) return true;
  return now - build.used < UNLOCKED_GRACE_MS;
}

/** Whether a process uses the build: its lock cannot be taken exclusively (it is released at once). */
export function buildInUse(build: Build, now = Date.now()): boolean {
  return build.locked ? withLock(build, () => false, true) : unlockedInUse(build, now);
}

/**
 * Removes a build unless a process uses it: its lock is taken exclusively while it is removed
 * (the stub takes it shared, and waits while it is held, then finds the directory gone and
 * extracts it again). Returns whether it was removed.
 */
export function removeBuild(build: Build, now = Date.now()): boolean {
  if (!build.locked) return !unlockedInUse(build, now) && removeTree(build.path);
  return withLock(build, () => removeTree(build.path), false);
}

/**
 * After a build was extracted: keeps the `keep` most recently used builds of each runtime
 * directory (each is its own space: tmpfs, /tmp, the disk; the current one always counts),
 * removes the others that are not in use.
 */
export function sweepBuilds(current: string, keep = KEEP_BUILDS, roots = runtimeRoots(current)): string[] {
  const removed: string[] = [];
  for (const root of roots) {
    sweepRemovals(root);
    const all = builds(root).sort((a, b) => b.used - a.used);
    const others = all.filter((build) => build.path !== current);
    const room = all.length === others.length ? keep : keep - 1;
    for (const build of others.slice(Math.max(0, room))) if (removeBuild(build)) removed.push(build.path);
  }
  return removed;
}
