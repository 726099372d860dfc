// Walks a directory to be made into a layer (reference §12.1): regular files, symlinks,
// directories, and overlay whiteouts (character devices 0/0, so deletions survive a
// commit) go in; directories we cannot enter and other special files are left out.
import { accessSync, constants, lstatSync, readdirSync } from "node:fs";
import type { Logger } from "../../core/log.ts";

export interface Gathered {
  /** Relative paths that go into the layer, parents before children. */
  entries: string[];
  /** Relative paths left out (and everything below them). */
  exclude: string[];
  bytes: number;
}

export function gather(root: string, log: Logger): Gathered {
  const result: Gathered = { entries: [], exclude: [], bytes: 0 };
  const walk = (relative: string) => {
    for (const name of readdirSync(relative ? `${root}/${relative}` : root)) {
      const path = relative ? `${relative}/${name}` : name;
      const info = lstatSync(`${root}/${path}`);
      if (info.isDirectory()) {
        try {
          accessSync(`${root}/${path}`, constants.R_OK | constants.X_OK);
        } catch {
          log.info(`Insufficient permissions to enter directory '${root}/${path}'`);
          result.exclude.push(path);
          continue;
        }
        result.entries.push(path);
        walk(path);
      } else if (info.isFile() || info.isSymbolicLink() || (info.isCharacterDevice() && info.rdev === 0)) {
        result.entries.push(path);
        result.bytes += info.isFile() ? info.size : 0;
      } else {
        log.info(`Ignoring file '${root}/${path}'`);
        result.exclude.push(path);
      }
    }
  };
  walk("");
  return result;
}
