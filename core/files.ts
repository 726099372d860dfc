// File helpers shared by the plugins that copy parts of the image out of it.
import { chmodSync, closeSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";

/**
 * Copies `length` bytes of `from` starting at `offset` to `to`, atomically: the data goes
 * to a temporary name, is checked (size, and sha256 when given), then renamed into place.
 */
export function extractRange(from: string, offset: number, length: number, to: string, options: { mode: number; sha256?: string }): void {
  const temporary = `${to}.${process.pid}.tmp`;
  const input = openSync(from, "r");
  const output = openSync(temporary, "w", options.mode);
  const hash = options.sha256 ? new Bun.CryptoHasher("sha256") : undefined;
  try {
    const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
    let done = 0;
    while (done < length) {
      const n = readSync(input, buffer, 0, Math.min(buffer.length, length - done), offset + done);
      if (n === 0) throw new Error(`'${from}' ends before byte ${offset + length}`);
      hash?.update(buffer.subarray(0, n));
      let written = 0;
      while (written < n) written += writeSync(output, buffer, written, n - written);
      done += n;
    }
    closeSync(output);
    if (hash && hash.digest("hex") !== options.sha256) throw new Error(`the copy of '${to}' does not match its checksum`);
    chmodSync(temporary, options.mode);
    renameSync(temporary, to);
  } catch (error) {
    try {
      closeSync(output);
    } catch {
      // already closed
    }
    rmSync(temporary, { force: true });
    throw error;
  } finally {
    closeSync(input);
  }
}
