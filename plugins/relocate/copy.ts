// The per-build copy of the launcher. Written to a temporary name and renamed, so a copy
// interrupted half-way is never used; afterwards only its size is checked.
import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import type { Image } from "../../core/image.ts";
import type { Logger } from "../../core/log.ts";
import { GLOBAL_DIR } from "../../core/paths.ts";

/** Creates a directory shared by all users (mode 1777), like /tmp itself. */
function sharedDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o1777 });
    chmodSync(path, 0o1777); // the umask narrowed it
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/** Creates /tmp/fim/app/<uid> for this user only, and refuses one owned by someone else. */
export function privateUserDir(uid: number): string {
  sharedDir(GLOBAL_DIR);
  sharedDir(`${GLOBAL_DIR}/app`);
  const dir = `${GLOBAL_DIR}/app/${uid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  if (!info.isDirectory() || info.uid !== uid) {
    throw new Error(`'${dir}' is not a directory owned by uid ${uid}; remove it and retry`);
  }
  if ((info.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

/** Copies the first `length` bytes of `from` (Bun.write ignores a slice of a file source). */
function copyPrefix(from: string, to: string, length: number): void {
  const input = openSync(from, "r");
  const output = openSync(to, "w", 0o700);
  try {
    const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
    let done = 0;
    while (done < length) {
      const n = readSync(input, buffer, 0, Math.min(buffer.length, length - done), done);
      if (n === 0) break;
      let written = 0;
      while (written < n) written += writeSync(output, buffer, written, n - written);
      done += n;
    }
  } finally {
    closeSync(input);
    closeSync(output);
  }
}

export async function ensureLauncherCopy(image: Image, app: string, log: Logger): Promise<string> {
  const uid = process.getuid?.() ?? 0;
  privateUserDir(uid);
  const bin = `${app}/bin`;
  const boot = `${bin}/fim_boot`;
  try {
    if (statSync(boot).size === image.launcherSize) return boot;
  } catch {
    // absent: copy it below
  }
  mkdirSync(bin, { recursive: true, mode: 0o700 });
  log.debug(`Writting binary file '${boot}'`);
  const temporary = `${boot}.${process.pid}.tmp`;
  try {
    copyPrefix(image.path, temporary, image.launcherSize);
    if (statSync(temporary).size !== image.launcherSize) throw new Error(`short copy of the launcher to '${temporary}'`);
    chmodSync(temporary, 0o700);
    renameSync(temporary, boot);
  } finally {
    rmSync(temporary, { force: true });
  }
  return boot;
}
