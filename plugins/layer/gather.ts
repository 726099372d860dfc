// Walks a directory to be made into a layer (reference §12.1): regular files, symlinks,
// directories, and overlay whiteouts (character devices 0/0, so deletions survive a
// commit) go in; directories we cannot enter and other special files are left out.
// Names are carried as bytes (latin1 strings), so names that are not UTF-8 go in too.
// Paths the caller leaves out (a bundle's package lists and caches) are neither walked nor
// listed: they go into the layer tool's exclusions and stay where they are.
import { isUtf8 } from "../../lib/node.ts";
import { accessSync, constants, lstatSync, readdirSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";

export interface Gathered {
  /** Relative paths that go into the layer, parents before children, as byte strings (see `bytePath`). */
  entries: string[];
  /** Relative paths left out (and everything below them), as text for the layer tool. */
  exclude: string[];
  /** Of `leaveOut`, the paths that were there. */
  leftOut: string[];
  bytes: number;
}

/** A path given as text, or a byte string joined under one, as bytes for node:fs. */
export function bytePath(root: string, relative?: string): Buffer {
  const base = Buffer.from(root);
  return relative === undefined ? base : Buffer.concat([base, Buffer.from(`/${relative}`, "latin1")]);
}

/** A relative byte-string path as text for a command line: only UTF-8 names can be passed on. */
function asText(root: string, path: string): string {
  const raw = Buffer.from(path, "latin1");
  if (!isUtf8(raw)) throw new FimError(`Cannot leave out '${root}/${raw.toString()}': its name is not valid UTF-8; remove it or make it readable`);
  return raw.toString();
}

/**
 * `leaveOut`: relative paths not to walk or list. `specials`: keep devices, FIFOs and sockets
 * too (a squash keeps what its layers had; a commit, as upstream, leaves them out).
 */
export function gather(root: string, log: Logger, leaveOut: readonly string[] = [], specials = false): Gathered {
  const result: Gathered = { entries: [], exclude: [], leftOut: [], bytes: 0 };
  const skipped = new Set(leaveOut.map((path) => Buffer.from(path.replace(/^\/+|\/+$/g, "")).toString("latin1")));
  const exclude = (path: string) => result.exclude.push(asText(root, path));
  const walk = (relative: string) => {
    const names = readdirSync(relative ? bytePath(root, relative) : bytePath(root), { encoding: "buffer" }) as Buffer[];
    for (const raw of names) {
      const name = raw.toString("latin1");
      const path = relative ? `${relative}/${name}` : name;
      if (skipped.has(path)) {
        exclude(path);
        result.leftOut.push(asText(root, path));
        continue;
      }
      const info = lstatSync(bytePath(root, path));
      if (info.isDirectory()) {
        try {
          accessSync(bytePath(root, path), constants.R_OK | constants.X_OK);
        } catch {
          log.info(`Insufficient permissions to enter directory '${root}/${raw.toString()}'`);
          exclude(path);
          continue;
        }
        result.entries.push(path);
        walk(path);
      } else if (info.isFile() || info.isSymbolicLink() || (info.isCharacterDevice() && info.rdev === 0) || specials) {
        result.entries.push(path);
        result.bytes += info.isFile() ? info.size : 0;
      } else {
        log.info(`Ignoring file '${root}/${Buffer.from(path, "latin1").toString()}'`);
        exclude(path);
      }
    }
  };
  walk("");
  return result;
}
