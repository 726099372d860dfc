// The FUSE request loop: reads one request at a time from the /dev/fuse descriptor, decodes
// it, calls the filesystem and writes one reply. Blocking reads on one thread: the cost of a
// request is the kernel round trip, not the handler (see notes/fuse-in-typescript.md).
// Handlers throw a positive errno (a number) to fail a request.
import { readSync, writeSync } from "../fs.ts";
import { osConstants } from "../node.ts";
import { kernelDev, type Stat, type StatFs } from "./libc.ts";

export const enum Op {
  LOOKUP = 1, FORGET = 2, GETATTR = 3, SETATTR = 4, READLINK = 5, SYMLINK = 6, MKNOD = 8, MKDIR = 9,
  UNLINK = 10, RMDIR = 11, RENAME = 12, LINK = 13, OPEN = 14, READ = 15, WRITE = 16, STATFS = 17,
  RELEASE = 18, FSYNC = 20, SETXATTR = 21, GETXATTR = 22, LISTXATTR = 23, REMOVEXATTR = 24, FLUSH = 25,
  INIT = 26, OPENDIR = 27, READDIR = 28, RELEASEDIR = 29, FSYNCDIR = 30, ACCESS = 34, CREATE = 35,
  INTERRUPT = 36, DESTROY = 38, BATCH_FORGET = 42, FALLOCATE = 43, READDIRPLUS = 44, RENAME2 = 45,
}

/** FATTR_* bits of a SETATTR request. */
export const SetattrValid = { MODE: 1, UID: 2, GID: 4, SIZE: 8, ATIME: 16, MTIME: 32, FH: 64, ATIME_NOW: 128, MTIME_NOW: 256, CTIME: 1024 } as const;

export interface Caller {
  uid: number;
  gid: number;
  pid: number;
}

export interface Entry {
  node: number;
  stat: Stat;
}

export interface Setattr {
  valid: number;
  fh: number;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  atimeNsec: number;
  mtime: number;
  mtimeNsec: number;
}

export interface DirEntry {
  name: string;
  ino: number;
  /** The file type bits (mode >> 12). */
  type: number;
}

/** What a filesystem implements. Names and link targets are byte strings (latin1). */
export interface Filesystem {
  lookup(parent: number, name: string): Entry;
  forget(node: number, count: number): void;
  /** `fh` is set when the kernel asks through an open file (fstat), which may be unlinked. */
  getattr(node: number, fh: number | undefined): Stat;
  setattr(node: number, changes: Setattr): Stat;
  readlink(node: number): string;
  symlink(parent: number, name: string, target: string, caller: Caller): Entry;
  mknod(parent: number, name: string, mode: number, rdev: number, caller: Caller): Entry;
  mkdir(parent: number, name: string, mode: number, caller: Caller): Entry;
  unlink(parent: number, name: string): void;
  rmdir(parent: number, name: string): void;
  rename(parent: number, name: string, newParent: number, newName: string, flags: number): void;
  link(node: number, newParent: number, newName: string): Entry;
  open(node: number, flags: number): number;
  create(parent: number, name: string, mode: number, flags: number, caller: Caller): { entry: Entry; fh: number };
  /** Reads into `target` at `at`; returns the byte count. */
  read(fh: number, offset: number, size: number, target: Buffer, at: number): number;
  write(fh: number, offset: number, data: Buffer, at: number, size: number): number;
  release(fh: number): void;
  fsync(fh: number, dataOnly: boolean): void;
  fallocate(fh: number, mode: number, offset: number, length: number): void;
  statfs(node: number): StatFs;
  setxattr(node: number, name: string, value: Buffer, flags: number): void;
  getxattr(node: number, name: string, size: number): Buffer | number;
  listxattr(node: number, size: number): Buffer | number;
  removexattr(node: number, name: string): void;
  opendir(node: number): number;
  /** The directory's entries ("." and ".." included), as listed when it was opened. */
  readdir(fh: number): DirEntry[];
  releasedir(fh: number): void;
}

export interface SessionOptions {
  /** Seconds the kernel may cache names and attributes. */
  ttl: number;
}

const ENOSYS = 38;
const EIO = 5;
const ERANGE = 34;
const IN_HEADER = 40;
const OUT_HEADER = 16;
const MAX_WRITE = 1 << 20;
const MAX_PAGES = 256;
const KERNEL_MINOR = 31;

// FUSE_INIT flags we ask for (those the kernel offers).
const INIT_WANTED =
  (1 << 0) | // ASYNC_READ
  (1 << 3) | // ATOMIC_O_TRUNC
  (1 << 5) | // BIG_WRITES
  (1 << 12) | // AUTO_INVAL_DATA
  (1 << 13) | // DO_READDIRPLUS
  (1 << 14) | // READDIRPLUS_AUTO
  (1 << 18) | // PARALLEL_DIROPS
  (1 << 22) | // MAX_PAGES
  (1 << 23); // CACHE_SYMLINKS
const FOPEN_KEEP_CACHE = 2;
// close(2) sends no FLUSH (Linux 5.18+; older kernels ignore the bit): we have nothing to flush.
const FOPEN_NOFLUSH = 1 << 5;

/** Serves one mounted FUSE descriptor until it is unmounted. */
export class Session {
  private readonly input = Buffer.allocUnsafe(MAX_WRITE + 64 * 1024);
  private readonly output = Buffer.allocUnsafe(MAX_WRITE + 64 * 1024);
  private readonly ttl: number;
  private readonly ttlNsec: number;

  constructor(
    private readonly fd: number,
    private readonly fs: Filesystem,
    options: SessionOptions,
  ) {
    this.ttl = Math.floor(options.ttl);
    this.ttlNsec = Math.round((options.ttl - this.ttl) * 1e9);
  }

  /** Serves requests until the filesystem is unmounted (returns) or the device fails (throws). */
  loop(): void {
    const input = this.input;
    for (;;) {
      let length: number;
      try {
        length = readSync(this.fd, input, 0, input.length, null);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === "EINTR" || code === "ENOENT" || code === "EAGAIN") continue; // interrupted: read again
        if (code === "ENODEV") return; // unmounted
        throw error;
      }
      if (length < IN_HEADER) continue;
      const opcode = input.readUInt32LE(4);
      if (opcode === Op.DESTROY) return;
      this.handle(opcode, length);
    }
  }

  private handle(opcode: number, length: number): void {
    const input = this.input;
    const unique = input.readBigUInt64LE(8);
    const node = Number(input.readBigUInt64LE(16));
    // Extensions (total_extlen, in 8-byte units) follow the arguments; we use none.
    const end = length - input.readUInt16LE(36) * 8;
    const arg = IN_HEADER;
    try {
      const size = this.dispatch(opcode, node, arg, end);
      if (size >= 0) this.reply(unique, 0, size);
    } catch (error) {
      const code = typeof error === "number" ? error : errnoOf(error);
      if (code !== undefined) this.reply(unique, code, 0);
      else {
        process.stderr.write(`fuse: request ${opcode} failed: ${(error as Error)?.stack ?? error}\n`);
        this.reply(unique, EIO, 0);
      }
    }
  }

  /** Handles one request; returns the reply's payload size, or -1 for requests that get none. */
  private dispatch(opcode: number, node: number, arg: number, end: number): number {
    const { input, output, fs } = this;
    const body = OUT_HEADER;
    switch (opcode) {
      case Op.INIT:
        return this.init(arg);
      case Op.LOOKUP:
        return this.entry(body, fs.lookup(node, this.nameAt(arg)));
      case Op.FORGET:
        fs.forget(node, Number(input.readBigUInt64LE(arg)));
        return -1;
      case Op.BATCH_FORGET: {
        const count = input.readUInt32LE(arg);
        for (let i = 0, at = arg + 8; i < count && at + 16 <= end; i++, at += 16) fs.forget(Number(input.readBigUInt64LE(at)), Number(input.readBigUInt64LE(at + 8)));
        return -1;
      }
      case Op.INTERRUPT:
        return -1;
      case Op.GETATTR: {
        const throughFile = (input.readUInt32LE(arg) & 1) === 1; // FUSE_GETATTR_FH
        return this.attr(body, fs.getattr(node, throughFile ? Number(input.readBigUInt64LE(arg + 8)) : undefined));
      }
      case Op.SETATTR:
        return this.attr(
          body,
          fs.setattr(node, {
            valid: input.readUInt32LE(arg),
            fh: Number(input.readBigUInt64LE(arg + 8)),
            size: Number(input.readBigUInt64LE(arg + 16)),
            atime: Number(input.readBigInt64LE(arg + 32)),
            mtime: Number(input.readBigInt64LE(arg + 40)),
            atimeNsec: input.readUInt32LE(arg + 56),
            mtimeNsec: input.readUInt32LE(arg + 60),
            mode: input.readUInt32LE(arg + 68),
            uid: input.readUInt32LE(arg + 76),
            gid: input.readUInt32LE(arg + 80),
          }),
        );
      case Op.READLINK: {
        const target = fs.readlink(node);
        return output.write(target, body, "latin1");
      }
      case Op.SYMLINK: {
        const linkName = this.nameAt(arg);
        const target = this.nameAt(arg + linkName.length + 1);
        return this.entry(body, fs.symlink(node, linkName, target, this.caller()));
      }
      case Op.MKNOD:
        return this.entry(body, fs.mknod(node, this.nameAt(arg + 16), input.readUInt32LE(arg), input.readUInt32LE(arg + 4), this.caller()));
      case Op.MKDIR:
        return this.entry(body, fs.mkdir(node, this.nameAt(arg + 8), input.readUInt32LE(arg), this.caller()));
      case Op.UNLINK:
        fs.unlink(node, this.nameAt(arg));
        return 0;
      case Op.RMDIR:
        fs.rmdir(node, this.nameAt(arg));
        return 0;
      case Op.RENAME:
      case Op.RENAME2: {
        const header = opcode === Op.RENAME ? 8 : 16;
        const flags = opcode === Op.RENAME ? 0 : input.readUInt32LE(arg + 8);
        const oldName = this.nameAt(arg + header);
        fs.rename(node, oldName, Number(input.readBigUInt64LE(arg)), this.nameAt(arg + header + oldName.length + 1), flags);
        return 0;
      }
      case Op.LINK:
        return this.entry(body, fs.link(Number(input.readBigUInt64LE(arg)), node, this.nameAt(arg + 8)));
      case Op.OPEN:
      case Op.OPENDIR: {
        const fh = opcode === Op.OPEN ? fs.open(node, input.readUInt32LE(arg)) : fs.opendir(node);
        return this.openOut(body, fh);
      }
      case Op.CREATE: {
        const created = fs.create(node, this.nameAt(arg + 16), input.readUInt32LE(arg + 4), input.readUInt32LE(arg), this.caller());
        const size = this.entry(body, created.entry);
        return size + this.openOut(body + size, created.fh);
      }
      case Op.READ:
        return fs.read(Number(input.readBigUInt64LE(arg)), Number(input.readBigUInt64LE(arg + 8)), input.readUInt32LE(arg + 16), output, body);
      case Op.WRITE: {
        const size = input.readUInt32LE(arg + 16);
        const written = fs.write(Number(input.readBigUInt64LE(arg)), Number(input.readBigUInt64LE(arg + 8)), input, arg + 40, size);
        output.writeUInt32LE(written, body);
        output.writeUInt32LE(0, body + 4);
        return 8;
      }
      case Op.RELEASE:
        fs.release(Number(input.readBigUInt64LE(arg)));
        return 0;
      case Op.RELEASEDIR:
        fs.releasedir(Number(input.readBigUInt64LE(arg)));
        return 0;
      case Op.FLUSH:
        return 0;
      case Op.FSYNC:
        fs.fsync(Number(input.readBigUInt64LE(arg)), (input.readUInt32LE(arg + 8) & 1) === 1);
        return 0;
      case Op.FSYNCDIR:
        return 0;
      case Op.FALLOCATE:
        fs.fallocate(Number(input.readBigUInt64LE(arg)), input.readUInt32LE(arg + 24), Number(input.readBigUInt64LE(arg + 8)), Number(input.readBigUInt64LE(arg + 16)));
        return 0;
      case Op.STATFS:
        return this.statfs(body, fs.statfs(node));
      case Op.SETXATTR: {
        const valueSize = input.readUInt32LE(arg);
        const key = this.nameAt(arg + 8);
        const at = arg + 8 + key.length + 1;
        fs.setxattr(node, key, Buffer.from(input.subarray(at, at + valueSize)), input.readUInt32LE(arg + 4));
        return 0;
      }
      case Op.GETXATTR:
      case Op.LISTXATTR: {
        const size = input.readUInt32LE(arg);
        const result = opcode === Op.GETXATTR ? fs.getxattr(node, this.nameAt(arg + 8), size) : fs.listxattr(node, size);
        if (typeof result === "number") {
          output.writeUInt32LE(result, body);
          output.writeUInt32LE(0, body + 4);
          return 8;
        }
        if (result.length > size) throw ERANGE;
        result.copy(output, body);
        return result.length;
      }
      case Op.REMOVEXATTR:
        fs.removexattr(node, this.nameAt(arg));
        return 0;
      case Op.READDIR:
      case Op.READDIRPLUS:
        return this.readdir(opcode === Op.READDIRPLUS, node, arg);
      default:
        // ACCESS (default_permissions checks for us), locks, ioctl, lseek…: the kernel copes.
        throw ENOSYS;
    }
  }

  /** Who sent the request being handled. */
  private caller(): Caller {
    const input = this.input;
    return { uid: input.readUInt32LE(24), gid: input.readUInt32LE(28), pid: input.readUInt32LE(32) };
  }

  /** The NUL-terminated name at `at` in the request, as a byte string. */
  private nameAt(at: number): string {
    return this.input.toString("latin1", at, this.input.indexOf(0, at));
  }

  private init(arg: number): number {
    const { input, output } = this;
    const major = input.readUInt32LE(arg);
    const body = OUT_HEADER;
    output.fill(0, body, body + 64);
    output.writeUInt32LE(7, body);
    if (major !== 7) return 8; // the kernel retries with our major
    output.writeUInt32LE(KERNEL_MINOR, body + 4);
    output.writeUInt32LE(input.readUInt32LE(arg + 8), body + 8); // max_readahead
    output.writeUInt32LE((input.readUInt32LE(arg + 12) & INIT_WANTED) >>> 0, body + 12);
    output.writeUInt16LE(16, body + 16); // max_background
    output.writeUInt16LE(12, body + 18); // congestion_threshold
    output.writeUInt32LE(MAX_WRITE, body + 20);
    output.writeUInt32LE(1, body + 24); // time_gran: nanoseconds
    output.writeUInt16LE(MAX_PAGES, body + 28);
    return 64;
  }

  private attrAt(at: number, stat: Stat): void {
    const out = this.output;
    out.writeUIntLE(stat.ino, at, 6), out.writeUInt16LE(0, at + 6);
    writeU64(out, at + 8, stat.size);
    writeU64(out, at + 16, stat.blocks);
    writeU64(out, at + 24, stat.atime);
    writeU64(out, at + 32, stat.mtime);
    writeU64(out, at + 40, stat.ctime);
    out.writeUInt32LE(stat.atimeNsec, at + 48);
    out.writeUInt32LE(stat.mtimeNsec, at + 52);
    out.writeUInt32LE(stat.ctimeNsec, at + 56);
    out.writeUInt32LE(stat.mode, at + 60);
    out.writeUInt32LE(stat.nlink >>> 0, at + 64);
    out.writeUInt32LE(stat.uid, at + 68);
    out.writeUInt32LE(stat.gid, at + 72);
    out.writeUInt32LE(kernelDev(stat.rdev), at + 76);
    out.writeUInt32LE(4096, at + 80); // blksize
    out.writeUInt32LE(0, at + 84);
  }

  /** fuse_entry_out (128 bytes). */
  private entry(at: number, entry: Entry): number {
    const out = this.output;
    writeU64(out, at, entry.node);
    writeU64(out, at + 8, 0); // generation
    writeU64(out, at + 16, this.ttl);
    writeU64(out, at + 24, this.ttl);
    out.writeUInt32LE(this.ttlNsec, at + 32);
    out.writeUInt32LE(this.ttlNsec, at + 36);
    this.attrAt(at + 40, entry.stat);
    return 128;
  }

  /** fuse_attr_out (104 bytes). */
  private attr(at: number, stat: Stat): number {
    const out = this.output;
    writeU64(out, at, this.ttl);
    out.writeUInt32LE(this.ttlNsec, at + 8);
    out.writeUInt32LE(0, at + 12);
    this.attrAt(at + 16, stat);
    return 104;
  }

  private openOut(at: number, fh: number): number {
    const out = this.output;
    writeU64(out, at, fh);
    out.writeUInt32LE(FOPEN_KEEP_CACHE | FOPEN_NOFLUSH, at + 8);
    out.writeUInt32LE(0, at + 12);
    return 16;
  }

  private statfs(at: number, s: StatFs): number {
    const out = this.output;
    out.fill(0, at, at + 80);
    writeU64(out, at, s.blocks);
    writeU64(out, at + 8, s.bfree);
    writeU64(out, at + 16, s.bavail);
    writeU64(out, at + 24, s.files);
    writeU64(out, at + 32, s.ffree);
    out.writeUInt32LE(s.bsize, at + 40);
    out.writeUInt32LE(s.namelen, at + 44);
    out.writeUInt32LE(s.frsize, at + 48);
    return 80;
  }

  private readdir(plus: boolean, node: number, arg: number): number {
    const { input, output, fs } = this;
    const fh = Number(input.readBigUInt64LE(arg));
    let offset = Number(input.readBigUInt64LE(arg + 8));
    const limit = input.readUInt32LE(arg + 16);
    const entries = fs.readdir(fh);
    let at = OUT_HEADER;
    const end = OUT_HEADER + limit;
    for (; offset < entries.length; offset++) {
      const entry = entries[offset]!;
      const nameLength = entry.name.length;
      const direntSize = (24 + nameLength + 7) & ~7;
      const size = plus ? 128 + direntSize : direntSize;
      if (at + size > end) break;
      let ino = entry.ino;
      if (plus) {
        if (entry.name === "." || entry.name === "..") output.fill(0, at, at + 128);
        else {
          // readdirplus counts as a lookup: a name that vanished since opendir is skipped.
          let found: Entry;
          try {
            found = fs.lookup(node, entry.name);
          } catch {
            continue;
          }
          this.entry(at, found);
          ino = found.stat.ino;
        }
        at += 128;
      }
      output.writeUIntLE(ino, at, 6), output.writeUInt16LE(0, at + 6);
      writeU64(output, at + 8, offset + 1);
      output.writeUInt32LE(nameLength, at + 16);
      output.writeUInt32LE(entry.type, at + 20);
      output.write(entry.name, at + 24, "latin1");
      output.fill(0, at + 24 + nameLength, at + direntSize);
      at += direntSize;
    }
    return at - OUT_HEADER;
  }

  private reply(unique: bigint, error: number, size: number): void {
    const out = this.output;
    const length = OUT_HEADER + (error ? 0 : size);
    out.writeUInt32LE(length, 0);
    out.writeInt32LE(error ? -error : 0, 4);
    out.writeBigUInt64LE(unique, 8);
    try {
      writeSync(this.fd, out, 0, length);
    } catch (error) {
      // ENOENT: the request was interrupted and is gone; anything else is for the caller.
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
}

/** The errno of an error thrown by node:fs (its `code`), if it has one. */
function errnoOf(error: unknown): number | undefined {
  const code = (error as NodeJS.ErrnoException)?.code;
  return code ? (osConstants().errno as Record<string, number>)[code] : undefined;
}

function writeU64(buffer: Buffer, at: number, value: number): void {
  buffer.writeUInt32LE(value % 0x1_0000_0000 >>> 0, at);
  buffer.writeUInt32LE(Math.floor(value / 0x1_0000_0000) >>> 0, at + 4);
}
