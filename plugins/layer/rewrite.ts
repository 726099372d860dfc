// Replaces the image's embedded layers (fim-layer remove, squash). The image is never written
// in place: a new file is written beside it (everything up to the layers copied as it is,
// then the layers of the new list) and renamed over it, all under the image lock. So:
//  * killed at any moment, the image is either the old file or the complete new one; the
//    new file is made with O_TMPFILE where the filesystem allows it, so an interrupted
//    rewrite leaves nothing behind (elsewhere a named temporary file, swept the next time);
//  * a run that has the image open (its layers mounted) keeps reading the old file, which
//    the kernel keeps until it is closed: nothing changes under a running program;
//  * the image file is only read, so a process executing it (ETXTBSY) is no obstacle.
// Writers of the reserved space that waited for the lock take it again on the new file
// (core/image.ts lockImage).
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fdatasyncSync,
  fstatSync,
  fsyncSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
} from "../../lib/fs.ts";
import { basename, dirname } from "../../lib/path.ts";
import { FimError } from "../../core/errors.ts";
import { embeddedLayers, Image, lockImage, pwriteAll, type LayerRecord } from "../../core/image.ts";
import { linkDescriptor } from "../../core/libc.ts";
import type { Logger } from "../../core/log.ts";
import { mib, percent, Progress } from "../../core/progress.ts";
import { alive } from "../../core/proc.ts";

/** A layer of the new list: one the image has, or a new layer file. */
export type Piece = { record: LayerRecord } | { file: string; size: number };

// Read when used: fs.constants differ between architectures, and reading them loads node:fs.
const O_TMPFILE = () => 0o20000000 | constants.O_DIRECTORY;

/** Removes the named temporary files that interrupted rewrites left (only where O_TMPFILE was not available). */
function sweep(dir: string, base: string, log: Logger): void {
  const pattern = /^\.(.*)\.fim-layer-(\d+)\.(tmp|new)$/;
  for (const name of readdirSync(dir)) {
    const match = pattern.exec(name);
    if (!match || match[1] !== base || alive(Number(match[2]))) continue;
    log.info(`Removing '${dir}/${name}', left by an interrupted rewrite of the image`);
    rmSync(`${dir}/${name}`, { force: true });
  }
}

interface Temporary {
  fd: number;
  /** Puts the file in place of `target` (atomic). */
  publish(target: string): void;
  discard(): void;
}

function temporaryBeside(path: string, mode: number): Temporary {
  const dir = dirname(path);
  const named = (suffix: string) => `${dir}/.${basename(path)}.fim-layer-${process.pid}.${suffix}`;
  try {
    const fd = openSync(dir, O_TMPFILE() | constants.O_RDWR, 0o600);
    return {
      fd,
      publish(target) {
        const name = named("new");
        linkDescriptor(fd, name);
        try {
          renameSync(name, target);
        } catch (error) {
          rmSync(name, { force: true });
          throw error;
        }
      },
      discard: () => {},
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EOPNOTSUPP" && code !== "EISDIR" && code !== "EINVAL" && code !== "ENOTSUP") throw error;
  }
  const name = named("tmp");
  const fd = openSync(name, constants.O_RDWR | constants.O_CREAT | constants.O_EXCL, mode & 0o700);
  return { fd, publish: (target) => renameSync(name, target), discard: () => rmSync(name, { force: true }) };
}

const BUFFER = 8 * 1024 * 1024;

/** Copies `length` bytes between descriptors at the given positions. */
function copy(from: number, fromAt: number, to: number, toAt: number, length: number, tick: (bytes: number) => void): void {
  const buffer = Buffer.allocUnsafe(Math.min(BUFFER, Math.max(length, 1)));
  for (let done = 0; done < length; ) {
    const n = readSync(from, buffer, 0, Math.min(buffer.length, length - done), fromAt + done);
    if (n === 0) throw new Error(`a layer ends before its recorded size (${length} bytes)`);
    pwriteAll(to, buffer.subarray(0, n), toAt + done);
    done += n;
    tick(n);
  }
}

const same = (a: LayerRecord[], b: LayerRecord[]) => a.length === b.length && a.every((layer, i) => layer.offset === b[i]!.offset && layer.size === b[i]!.size);

/**
 * Rewrites the image with `pieces` as its embedded layers. `planned` is the list of embedded
 * layers the pieces were chosen from: if the image has other layers now (another command
 * changed them meanwhile), nothing is changed. Returns the sizes before and after.
 */
export function rewriteLayers(image: Image, planned: LayerRecord[], pieces: Piece[], log: Logger): { before: number; after: number } {
  const lockFd = lockImage(image.path);
  try {
    const current = Image.read(lockFd, image.path);
    if (!same(embeddedLayers(current, () => {}), planned)) {
      throw new FimError("The layers of the image changed while this command ran (another fim-layer command?): nothing was changed, run it again");
    }
    const info = fstatSync(lockFd);
    const dir = dirname(image.path);
    sweep(dir, basename(image.path), log);
    const sizeOf = (piece: Piece) => ("record" in piece ? piece.record.size : piece.size);
    const total = current.layersOffset + pieces.reduce((sum, piece) => sum + 8 + sizeOf(piece), 0);
    let temporary: Temporary;
    try {
      temporary = temporaryBeside(image.path, info.mode);
    } catch (error) {
      throw new FimError(`Could not create the new image file in '${dir}': ${(error as Error).message} (replacing the image needs a writable directory)`);
    }
    const { fd } = temporary;
    let published = false;
    try {
      let written = 0;
      const bar = new Progress("Writing the image", () => `${percent(written, total, written === total)} (${mib(written)} of ${mib(total)} MiB)`, (line) => log.info(line));
      const tick = (bytes: number) => {
        written += bytes;
        bar.tick();
      };
      try {
        copy(lockFd, 0, fd, 0, current.layersOffset, tick);
        let at = current.layersOffset;
        for (const piece of pieces) {
          const size = sizeOf(piece);
          const word = Buffer.alloc(8);
          word.writeBigUInt64LE(BigInt(size));
          pwriteAll(fd, word, at);
          tick(8);
          if ("record" in piece) copy(lockFd, piece.record.offset, fd, at + 8, size, tick);
          else {
            const input = openSync(piece.file, "r");
            try {
              if (fstatSync(input).size !== size) throw new Error(`'${piece.file}' changed size while the image was rewritten`);
              copy(input, 0, fd, at + 8, size, tick);
            } finally {
              closeSync(input);
            }
          }
          at += 8 + size;
        }
        if (fstatSync(fd).size !== total) throw new Error(`the new image has ${fstatSync(fd).size} bytes, ${total} were expected`);
      } catch (error) {
        const why = (error as NodeJS.ErrnoException).code === "ENOSPC" ? `no space left in '${dir}' (the new image needs ${mib(total)} MiB beside the old one)` : (error as Error).message;
        throw new FimError(`Could not write the new image: ${why}`);
      } finally {
        bar.end();
      }
      fchmodSync(fd, info.mode & 0o7777);
      if (process.getuid?.() === 0 && (info.uid !== 0 || info.gid !== 0)) fchownSync(fd, info.uid, info.gid);
      fdatasyncSync(fd);
      try {
        temporary.publish(image.path);
      } catch (error) {
        throw new FimError(`Could not replace '${image.path}': ${(error as Error).message}`);
      }
      published = true;
      const dirFd = openSync(dir, "r");
      try {
        fsyncSync(dirFd);
      } finally {
        closeSync(dirFd);
      }
      return { before: info.size, after: total };
    } finally {
      closeSync(fd);
      if (!published) temporary.discard();
    }
  } finally {
    closeSync(lockFd);
  }
}
