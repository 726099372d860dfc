// Removing and measuring directory trees the runtime made: builds, instance directories,
// extracted layers, a kernel overlay's work directory (its work/work is mode 000). Symbolic
// links are never followed. A removal renames first, so a half-removed tree is never used,
// and what cannot go yet (a mount point in use) is swept by a later run.
import { chmodSync, lstatSync, readdirSync, renameSync, rmSync, type Stats } from "../lib/fs.ts";
import { basename, dirname, join } from "../lib/path.ts";
import { entriesOf } from "./paths.ts";
import { alive } from "./proc.ts";

/** Our directories below `path` made writable again (a guest's `chmod 500` of a directory with files, kept in a layer). */
function makeWritable(path: string): void {
  let info: Stats;
  try {
    info = lstatSync(path);
  } catch {
    return;
  }
  if (!info.isDirectory() || info.uid !== process.getuid?.()) return;
  try {
    if ((info.mode & 0o700) !== 0o700) chmodSync(path, info.mode | 0o700);
    for (const name of readdirSync(path)) makeWritable(join(path, name));
  } catch {
    // left as it is
  }
}

/**
 * Removes a tree, whatever its directories' modes; false when something stays (a mount point
 * in use), `why` then told the error. Never throws.
 */
export function removeAll(path: string, why?: (error: unknown) => void): boolean {
  try {
    rmSync(path, { recursive: true, force: true });
    return true;
  } catch {
    makeWritable(path);
    try {
      rmSync(path, { recursive: true, force: true });
      return true;
    } catch (error) {
      why?.(error);
      return false;
    }
  }
}

/**
 * Moves a directory out of the way (one rename, so nothing half-removed is ever used), then
 * removes it; what cannot be removed yet is left for sweepRemovals. Never throws.
 */
export function removeTree(path: string): boolean {
  const doomed = join(dirname(path), `.${basename(path)}.removing.${process.pid}`);
  try {
    renameSync(path, doomed);
  } catch {
    return false;
  }
  removeAll(doomed);
  return true;
}

/** Leftovers of removals that were interrupted, or that could not remove everything. */
export function sweepRemovals(root: string): void {
  for (const name of entriesOf(root)) {
    const match = /^\..*\.removing\.(\d+)$/.exec(name);
    if (match && (Number(match[1]) === process.pid || !alive(Number(match[1])))) removeAll(join(root, name));
  }
}

/** Bytes in a directory tree (files, not following links). */
export function treeSize(path: string): number {
  let total = 0;
  const walk = (dir: string) => {
    for (const name of entriesOf(dir)) {
      const entry = join(dir, name);
      try {
        const info = lstatSync(entry);
        if (info.isDirectory()) walk(entry);
        else total += info.size;
      } catch {
        // gone
      }
    }
  };
  walk(path);
  return total;
}
