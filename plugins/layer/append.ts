// Appends a layer to the image so that a process killed at any moment leaves the image
// with its previous layers: under the image lock, trailing bytes of an earlier interrupted
// append are cut off, the record goes in with a zero size word (which ends the layer scan),
// and the real size is written last.
import { closeSync, fdatasyncSync, ftruncateSync, openSync, readSync, statSync } from "../../lib/fs.ts";
import { embeddedLayers, Image, pwriteAll, withWriteLock } from "../../core/image.ts";

export function appendLayer(image: Image, file: string): void {
  withWriteLock(image, (fd) => {
    const current = Image.read(fd, image.path);
    const layers = embeddedLayers(current, () => {});
    const last = layers[layers.length - 1];
    const end = last ? last.offset + last.size : current.layersOffset;
    ftruncateSync(fd, end);
    const size = statSync(file).size;
    pwriteAll(fd, Buffer.alloc(8), end);
    const input = openSync(file, "r");
    try {
      const buffer = Buffer.allocUnsafe(8 * 1024 * 1024);
      let done = 0;
      while (done < size) {
        const n = readSync(input, buffer, 0, Math.min(buffer.length, size - done), done);
        if (n === 0) throw new Error(`'${file}' shrank while it was being appended`);
        pwriteAll(fd, buffer.subarray(0, n), end + 8 + done);
        done += n;
      }
    } finally {
      closeSync(input);
    }
    fdatasyncSync(fd);
    const word = Buffer.alloc(8);
    word.writeBigUInt64LE(BigInt(size));
    pwriteAll(fd, word, end);
    fdatasyncSync(fd);
  });
}
