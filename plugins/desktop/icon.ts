// The icon slot (reference §7.2): 4 bytes of extension ("png"/"svg"/"jpg" + NUL), then
// 1048564 bytes of data, then the data size as a u64 LE at +1048568.
//
// An icon is bigger than the reserved-space journal (~1 MiB minus the slots before it), so
// it is written in place under the image lock in three synced steps: clear the size and
// extension (readers now see no icon), write the zero-padded data, then the extension and
// size. A write killed half-way leaves no icon, never a torn one.
import { fdatasyncSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import { type Image, pwriteAll, withWriteLock } from "../../core/image.ts";
import { readSlot, SLOTS } from "../../core/reserved.ts";

export const ICON_EXTENSIONS = ["png", "svg", "jpg"] as const;
export type IconExtension = (typeof ICON_EXTENSIONS)[number];

const EXTENSION_SIZE = 4;
const SIZE_AT = 1048568;
/** The largest icon that fits (upstream accepted up to 1048575 bytes and overflowed). */
export const ICON_MAX = SIZE_AT - EXTENSION_SIZE;

export interface Icon {
  extension: IconExtension;
  data: Buffer;
}

export function writeIcon(image: Image, icon: Icon): void {
  if (icon.data.length > ICON_MAX) throw new FimError(`Not enough space to fit icon data: ${icon.data.length} vs ${ICON_MAX}`);
  const base = image.reservedOffset + SLOTS.icon.offset;
  withWriteLock(image, (fd) => {
    pwriteAll(fd, Buffer.alloc(8), base + SIZE_AT);
    pwriteAll(fd, Buffer.alloc(EXTENSION_SIZE), base);
    fdatasyncSync(fd);
    const field = Buffer.alloc(ICON_MAX);
    icon.data.copy(field);
    pwriteAll(fd, field, base + EXTENSION_SIZE);
    fdatasyncSync(fd);
    const extension = Buffer.alloc(EXTENSION_SIZE);
    extension.write(icon.extension, "latin1");
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(icon.data.length));
    pwriteAll(fd, size, base + SIZE_AT);
    pwriteAll(fd, extension, base);
    fdatasyncSync(fd);
  });
}

/** The stored icon, or undefined when the slot holds none. */
export function readIcon(image: Image): { extension: string; data: Buffer } | undefined {
  const slot = readSlot(image, SLOTS.icon);
  const nul = slot.indexOf(0);
  const extension = slot.subarray(0, nul === -1 || nul > EXTENSION_SIZE ? EXTENSION_SIZE : nul).toString("latin1");
  const size = Number(slot.readBigUInt64LE(SIZE_AT));
  if (extension === "" || size === 0) return undefined;
  if (size > ICON_MAX) throw new FimError(`Corrupt icon data in the reserved space of '${image.path}': size ${size} exceeds ${ICON_MAX}`);
  return { extension, data: Buffer.from(slot.subarray(EXTENSION_SIZE, EXTENSION_SIZE + size)) };
}

/** Checks that the bytes are what the extension says (a clear message at setup beats a silent failure at every run). */
export function checkIconContent(path: string, extension: IconExtension, data: Buffer): void {
  const ok =
    extension === "png"
      ? data.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
      : extension === "jpg"
        ? data.length > 3 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff
        : /<svg[\s>]/.test(data.subarray(0, 64 * 1024).toString("utf8"));
  if (!ok) throw new FimError(`Icon file '${path}' is not a valid ${extension === "jpg" ? "JPEG" : extension.toUpperCase()} image`);
}
