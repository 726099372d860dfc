// Reads what an EROFS layer holds without mounting it: the directory tree with each entry's
// type and size (for `fim-layer list --long`). Only metadata is read: inodes and directory
// blocks, which mkfs.erofs stores uncompressed; file data is never decompressed.
// On-disk format: the kernel's Documentation/filesystems/erofs.rst and erofs_fs.h.
import { closeSync, openSync, readSync } from "../../lib/fs.ts";
import type { LayerEntry, LayerEntryType } from "../../core/plugin.ts";

const SUPERBLOCK = 1024;
const MAGIC = 0xe0f5e1e2;
const DIRENT_SIZE = 12;
const FLAT_PLAIN = 0;
const FLAT_INLINE = 2;
const CHUNK = 64 * 1024;
const TYPES: Record<number, LayerEntryType> = { 1: "file", 2: "directory", 3: "char", 4: "block", 5: "fifo", 6: "socket", 7: "symlink" };

interface Inode {
  mode: number;
  size: number;
  /** Block address of the data (plain and inline layouts), or the device number. */
  u: number;
  layout: number;
  /** Where an inline tail starts (after the inode and its extended attributes). */
  tailAt: number;
}

/** Positioned reads of a layer, in cached 64 KiB chunks (metadata is read in small pieces). */
class Reader {
  private readonly chunks = new Map<number, Buffer>();
  constructor(
    private readonly fd: number,
    private readonly base: number,
    private readonly size: number,
  ) {}

  bytes(position: number, length: number): Buffer {
    if (position < 0 || position + length > this.size) throw new Error(`it refers to bytes ${position}..${position + length} beyond its size (${this.size})`);
    const out = Buffer.allocUnsafe(length);
    for (let done = 0; done < length; ) {
      const index = Math.floor((position + done) / CHUNK);
      const chunk = this.chunk(index);
      const from = position + done - index * CHUNK;
      const n = chunk.copy(out, done, from, Math.min(chunk.length, from + length - done));
      if (n === 0) throw new Error(`it ends before byte ${position + length}`);
      done += n;
    }
    return out;
  }

  private chunk(index: number): Buffer {
    let chunk = this.chunks.get(index);
    if (!chunk) {
      if (this.chunks.size > 1024) this.chunks.clear(); // bounded: 64 MiB
      const length = Math.min(CHUNK, this.size - index * CHUNK);
      chunk = Buffer.alloc(length);
      let done = 0;
      while (done < length) {
        const n = readSync(this.fd, chunk, done, length - done, this.base + index * CHUNK + done);
        if (n === 0) break;
        done += n;
      }
      this.chunks.set(index, chunk.subarray(0, done));
      chunk = this.chunks.get(index)!;
    }
    return chunk;
  }
}

/**
 * Calls `visit` for every entry below the root, parents before children, with paths as
 * byte strings (latin1) relative to the root. Throws with a description of what is wrong
 * when the layer is damaged or uses a layout this reader does not know.
 */
export function walkErofs(path: string, offset: number, size: number, visit: (entry: LayerEntry) => void): void {
  const fd = openSync(path, "r");
  try {
    const read = new Reader(fd, offset, size);
    const sb = read.bytes(SUPERBLOCK, 128);
    if (sb.readUInt32LE(0) !== MAGIC) throw new Error("it has no EROFS superblock");
    const blockBits = sb[12]!;
    if (blockBits < 9 || blockBits > 16) throw new Error(`its superblock has an invalid block size (2^${blockBits})`);
    if (sb[90] !== 0) throw new Error("its directory blocks are larger than its blocks (not supported here)");
    const block = 2 ** blockBits;
    const rootNid = sb.readUInt16LE(14);
    const metaStart = sb.readUInt32LE(40) * block;

    const inode = (nid: number): Inode => {
      const at = metaStart + nid * 32;
      const head = read.bytes(at, 32);
      const format = head.readUInt16LE(0);
      const extended = (format & 1) === 1;
      const xattrCount = head.readUInt16LE(2);
      const mode = head.readUInt16LE(4);
      const full = extended ? read.bytes(at, 64) : head;
      const inodeSize = extended ? 64 : 32;
      const xattrSize = xattrCount === 0 ? 0 : 12 + (xattrCount - 1) * 4;
      return {
        mode,
        size: extended ? Number(full.readBigUInt64LE(8)) : full.readUInt32LE(8),
        u: full.readUInt32LE(16),
        layout: (format >> 1) & 7,
        tailAt: at + inodeSize + xattrSize,
      };
    };

    const directoryData = (dir: Inode, where: string): Buffer => {
      if (dir.layout !== FLAT_PLAIN && dir.layout !== FLAT_INLINE) throw new Error(`directory '/${where}' uses data layout ${dir.layout} (not supported here)`);
      if (dir.layout === FLAT_PLAIN) return read.bytes(dir.u * block, dir.size);
      const whole = Math.floor(dir.size / block) * block;
      return Buffer.concat([whole > 0 ? read.bytes(dir.u * block, whole) : Buffer.alloc(0), read.bytes(dir.tailAt, dir.size - whole)]);
    };

    const walk = (nid: number, relative: string, depth: number) => {
      if (depth > 4096) throw new Error("its directories nest too deeply (a loop?)");
      const data = directoryData(inode(nid), relative);
      for (let start = 0; start < data.length; start += block) {
        const blockData = data.subarray(start, Math.min(data.length, start + block));
        const count = blockData.readUInt16LE(8) / DIRENT_SIZE;
        if (!Number.isInteger(count) || count < 1 || count * DIRENT_SIZE > blockData.length) throw new Error(`directory '/${relative}' is damaged`);
        for (let i = 0; i < count; i++) {
          const entryNid = Number(blockData.readBigUInt64LE(i * DIRENT_SIZE));
          const nameStart = blockData.readUInt16LE(i * DIRENT_SIZE + 8);
          const fileType = blockData[i * DIRENT_SIZE + 10]!;
          let nameEnd = i + 1 < count ? blockData.readUInt16LE((i + 1) * DIRENT_SIZE + 8) : blockData.length;
          if (i + 1 === count) {
            const nul = blockData.indexOf(0, nameStart);
            if (nul !== -1 && nul < nameEnd) nameEnd = nul;
          }
          if (nameStart > nameEnd || nameEnd > blockData.length) throw new Error(`directory '/${relative}' is damaged`);
          const name = blockData.toString("latin1", nameStart, nameEnd);
          if (name === "." || name === "..") continue;
          const path = relative ? `${relative}/${name}` : name;
          const type = TYPES[fileType];
          if (!type) throw new Error(`entry '/${path}' has an unknown type ${fileType}`);
          const node = inode(entryNid);
          visit({ path, type, size: type === "file" || type === "symlink" ? node.size : 0, rdev: type === "char" || type === "block" ? node.u : 0 });
          if (type === "directory") walk(entryNid, path, depth + 1);
        }
      }
    };
    walk(rootNid, "", 0);
  } finally {
    closeSync(fd);
  }
}
