// Merges unpacked layers into one directory with the semantics every overlay type gives
// them (fim-layer squash), moving entries with rename(2) rather than copying them:
//  * the higher layer wins a name; a higher directory merges with a lower directory unless
//    it is opaque; a lower directory's opacity, or a lower entry that is not a directory,
//    makes the merged directory opaque (nothing further down shows through either);
//  * whiteouts (character devices 0/0) are kept only where they hide something: a path of
//    a layer below the merged ones, with no opaque directory above it. Elsewhere they would
//    hide nothing, and the kernel overlay lists whiteouts of a directory that is in one
//    layer only as entries (a name that ls shows and stat does not find);
//  * opacity marks (user./trusted.overlay.opaque=y, user.fuseoverlayfs.opaque=y, a
//    `.wh..wh..opq` file) are kept, unless nothing lies below.
// Paths are byte strings (latin1), so names that are not UTF-8 survive.
import { chmodSync, lstatSync, readdirSync, renameSync, rmSync, type Stats, unlinkSync, writeFileSync } from "../../lib/fs.ts";
import * as libc from "../../lib/fuse/libc.ts";

const OPAQUE_MARKS = ["user.overlay.opaque", "trusted.overlay.opaque", "user.fuseoverlayfs.opaque"];
const OPAQUE_FILE = ".wh..wh..opq";
const ENOTSUP = 95;

const bytes = (path: string) => Buffer.from(path, "latin1");
const stat = (path: string): Stats | undefined => lstatSync(bytes(path), { throwIfNoEntry: false });
const names = (dir: string) => (readdirSync(bytes(dir), { encoding: "buffer" }) as Buffer[]).map((name) => name.toString("latin1"));
export const isWhiteout = (info: Stats) => info.isCharacterDevice() && info.rdev === 0;

function marks(path: string): string[] {
  let list: Buffer | number;
  try {
    list = libc.listxattr(path, 65536);
  } catch {
    return [];
  }
  if (typeof list === "number") return [];
  return list
    .toString("latin1")
    .split("\0")
    .filter((name) => OPAQUE_MARKS.includes(name));
}

function opaque(dir: string): boolean {
  for (const mark of marks(dir)) {
    const value = libc.getxattr(dir, mark, 16);
    if (typeof value !== "number" && value.toString() === "y") return true;
  }
  return stat(`${dir}/${OPAQUE_FILE}`) !== undefined;
}

function markOpaque(dir: string): void {
  if (opaque(dir)) return;
  try {
    libc.setxattr(dir, "user.overlay.opaque", Buffer.from("y"), 0);
  } catch (code) {
    if (code !== ENOTSUP) throw new Error(`could not mark '${dir}' opaque (errno ${code})`);
    writeFileSync(bytes(`${dir}/${OPAQUE_FILE}`), "");
  }
}

/** Moves what `lower` adds under `upper` (both directories, `upper` not opaque). */
function mergeInto(upper: string, lower: string): void {
  for (const name of names(lower)) {
    if (name === OPAQUE_FILE) continue; // the caller carries the lower directory's opacity
    const from = `${lower}/${name}`;
    const to = `${upper}/${name}`;
    const above = stat(to);
    if (!above) {
      renameSync(bytes(from), bytes(to));
      continue;
    }
    if (!above.isDirectory() || opaque(to)) continue; // the higher entry hides the lower one
    const below = stat(from)!;
    if (below.isDirectory()) {
      mergeInto(to, from);
      if (opaque(from)) markOpaque(to);
    } else markOpaque(to); // a file or whiteout below ends what shows through
  }
}

/**
 * Merges the unpacked layers `dirs` (lowest first) into the last of them and returns it.
 * `below`: every path (relative, latin1) of the layers under the first one, whiteouts aside.
 */
export function mergeLayers(dirs: string[], below: ReadonlySet<string>): string {
  const top = dirs[dirs.length - 1]!;
  for (let i = dirs.length - 2; i >= 0; i--) {
    if (opaque(top)) break;
    mergeInto(top, dirs[i]!);
    if (opaque(dirs[i]!)) markOpaque(top);
  }
  if (below.size === 0) dropMarks(top);
  else dropIdleWhiteouts(top, "", below, opaque(top));
  return top;
}

function dropIdleWhiteouts(dir: string, relative: string, below: ReadonlySet<string>, hidden: boolean): void {
  for (const name of names(dir)) {
    const path = `${dir}/${name}`;
    const rel = relative ? `${relative}/${name}` : name;
    const info = stat(path)!;
    if (isWhiteout(info)) {
      if (hidden || !below.has(rel)) unlinkSync(bytes(path));
    } else if (info.isDirectory()) dropIdleWhiteouts(path, rel, below, hidden || opaque(path));
  }
}

function dropMarks(dir: string): void {
  for (const mark of marks(dir)) {
    try {
      libc.removexattr(dir, mark);
    } catch {
      // a mark we may not remove (trusted.* as a regular user) was not readable either
    }
  }
  for (const name of names(dir)) {
    const path = `${dir}/${name}`;
    const info = stat(path)!;
    if (name === OPAQUE_FILE || isWhiteout(info)) unlinkSync(bytes(path));
    else if (info.isDirectory()) dropMarks(path);
  }
}

interface Opened {
  path: string;
  ino: number;
  mode: number;
}

/**
 * As a regular user, directories without write permission for their owner cannot be merged
 * into: they are opened (u+rwx) for the merge, and `restore` gives back the modes of those
 * that ended up in `dir`, deepest first.
 */
export function openDirectories(roots: string[]): { restore(dir: string): void } {
  const opened = new Map<string, Opened[]>();
  if (process.getuid?.() !== 0) {
    for (const root of roots) {
      const list: Opened[] = [];
      const walk = (relative: string) => {
        const path = relative ? `${root}/${relative}` : root;
        const info = stat(path)!;
        if ((info.mode & 0o700) !== 0o700) {
          list.push({ path: relative, ino: info.ino, mode: info.mode & 0o7777 });
          chmodSync(bytes(path), (info.mode & 0o7777) | 0o700);
        }
        for (const name of names(path)) {
          const child = relative ? `${relative}/${name}` : name;
          if (stat(`${root}/${child}`)!.isDirectory()) walk(child);
        }
      };
      walk("");
      opened.set(root, list);
    }
  }
  return {
    restore(dir) {
      const all = [...opened.values()].flat().sort((a, b) => b.path.split("/").length - a.path.split("/").length);
      for (const entry of all) {
        const path = entry.path ? `${dir}/${entry.path}` : dir;
        if (stat(path)?.ino === entry.ino) chmodSync(bytes(path), entry.mode);
      }
    },
  };
}

/** rm -rf that also gets through directories without write permission. */
export function removeTree(path: string): void {
  try {
    rmSync(bytes(path), { recursive: true, force: true });
  } catch {
    const open = (dir: string) => {
      try {
        chmodSync(bytes(dir), 0o700);
        for (const name of names(dir)) if (stat(`${dir}/${name}`)?.isDirectory()) open(`${dir}/${name}`);
      } catch {
        // removed below if it can be
      }
    };
    open(path);
    rmSync(bytes(path), { recursive: true, force: true });
  }
}
