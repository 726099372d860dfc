// The C library calls a FUSE server needs (bound in lib/libc.ts): stat with nanoseconds,
// mknod, utimensat, extended attributes, mount/umount2 and descriptor passing. Paths go in
// as bytes (a latin1 string is a byte string), so names that are not UTF-8 survive.
import { osConstants } from "../node.ts";
import { errno, libc, pointerOf, withPinned } from "../libc.ts";

export { errno };

const SYSCALLS = process.arch === "arm64" ? { newfstatat: 79, mknodat: 33 } : { newfstatat: 262, mknodat: 259 };

// Two scratch buffers for NUL-terminated paths: calls take at most two paths.
const PATH_MAX = 4096;
const scratch = [Buffer.alloc(PATH_MAX + 1), Buffer.alloc(PATH_MAX + 1)] as const;

/** A latin1 (byte) string as a NUL-terminated C string in scratch buffer `slot`. */
function cpath(path: string, slot: 0 | 1 = 0): Buffer {
  if (path.length >= PATH_MAX) throw osConstants().errno.ENAMETOOLONG;
  const buffer = scratch[slot];
  buffer.write(path, 0, "latin1");
  buffer[path.length] = 0;
  return buffer;
}

export const cstring = (text: string) => Buffer.from(`${text}\0`);

const AT_FDCWD = -100;
const AT_SYMLINK_NOFOLLOW = 0x100;

/** A `struct stat` decoded into what FUSE replies need. */
export interface Stat {
  dev: number;
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev: number;
  size: number;
  blocks: number;
  atime: number;
  atimeNsec: number;
  mtime: number;
  mtimeNsec: number;
  ctime: number;
  ctimeNsec: number;
}

const statBuffer = Buffer.alloc(256);
// struct stat differs between x86_64 and the generic layout (arm64).
const LAYOUT =
  process.arch === "x64"
    ? { dev: 0, ino: 8, nlink: 16, nlink32: false, mode: 24, uid: 28, gid: 32, rdev: 40, size: 48, blocks: 64, atime: 72 }
    : { dev: 0, ino: 8, mode: 16, nlink: 20, nlink32: true, uid: 24, gid: 28, rdev: 32, size: 48, blocks: 64, atime: 72 };

const u64At = (buffer: Buffer, offset: number) => buffer.readUInt32LE(offset) + buffer.readUInt32LE(offset + 4) * 0x1_0000_0000;

function fstatat(path: string): boolean {
  return Number(libc().syscall(SYSCALLS.newfstatat, AT_FDCWD, pointerOf(cpath(path)), pointerOf(statBuffer), AT_SYMLINK_NOFOLLOW)) === 0;
}

/** lstat(2) with nanosecond times; throws the errno (a number) on failure. */
export function lstat(path: string): Stat {
  if (!fstatat(path)) throw errno();
  const b = statBuffer;
  const rdev = u64At(b, LAYOUT.rdev);
  return {
    dev: u64At(b, LAYOUT.dev),
    // Inode numbers above 2^53 lose their top bits; none of the filesystems below us has them.
    ino: u64At(b, LAYOUT.ino),
    mode: b.readUInt32LE(LAYOUT.mode),
    nlink: LAYOUT.nlink32 ? b.readUInt32LE(LAYOUT.nlink) : u64At(b, LAYOUT.nlink),
    uid: b.readUInt32LE(LAYOUT.uid),
    gid: b.readUInt32LE(LAYOUT.gid),
    rdev,
    size: u64At(b, LAYOUT.size),
    blocks: u64At(b, LAYOUT.blocks),
    atime: u64At(b, LAYOUT.atime),
    atimeNsec: b.readUInt32LE(LAYOUT.atime + 8),
    mtime: u64At(b, LAYOUT.atime + 16),
    mtimeNsec: b.readUInt32LE(LAYOUT.atime + 24),
    ctime: u64At(b, LAYOUT.atime + 32),
    ctimeNsec: b.readUInt32LE(LAYOUT.atime + 40),
  };
}

/** Whether lstat(path) succeeds (ENOENT/ENOTDIR → false; other errors are thrown). */
export function exists(path: string): boolean {
  if (fstatat(path)) return true;
  const code = errno();
  if (code === 2 || code === 20) return false;
  throw code;
}

/** The kernel's 32-bit device number encoding (as FUSE and mknodat take it) of a dev_t from stat. */
export function kernelDev(rdev: number): number {
  const major = (Math.floor(rdev / 0x1_0000_0000) & 0xfffff000) | ((rdev >>> 8) & 0xfff);
  const minor = (rdev & 0xff) | (Math.floor(rdev / 0x1000) & 0xffffff00);
  return ((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12)) >>> 0;
}

/** mknod(2); `rdev` is in the kernel's 32-bit encoding (see kernelDev), as FUSE sends it. */
export function mknod(path: string, mode: number, rdev: number): void {
  if (Number(libc().syscall(SYSCALLS.mknodat, AT_FDCWD, pointerOf(cpath(path)), mode, rdev)) !== 0) throw errno();
}

export const UTIME_NOW = (1 << 30) - 1;
export const UTIME_OMIT = (1 << 30) - 2;
const timespecs = Buffer.alloc(32);

/** utimensat without following symlinks; a nsec of UTIME_NOW/UTIME_OMIT means now/unchanged. */
export function utimens(path: string, atime: number, atimeNsec: number, mtime: number, mtimeNsec: number): void {
  timespecs.writeBigInt64LE(BigInt(atime), 0);
  timespecs.writeBigInt64LE(BigInt(atimeNsec), 8);
  timespecs.writeBigInt64LE(BigInt(mtime), 16);
  timespecs.writeBigInt64LE(BigInt(mtimeNsec), 24);
  if (libc().utimensat(AT_FDCWD, cpath(path), timespecs, AT_SYMLINK_NOFOLLOW) !== 0) throw errno();
}

const xattrBuffer = Buffer.alloc(65536);

/** lgetxattr; `size` 0 asks for the length only. Returns the value or its length. */
export function getxattr(path: string, name: string, size: number): Buffer | number {
  const target = size === 0 ? null : size <= xattrBuffer.length ? xattrBuffer : Buffer.alloc(size);
  const length = Number(libc().lgetxattr(cpath(path), cpath(name, 1), target, BigInt(size)));
  if (length < 0) throw errno();
  return target ? Buffer.from(target.subarray(0, length)) : length;
}

export function setxattr(path: string, name: string, value: Buffer, flags: number): void {
  if (libc().lsetxattr(cpath(path), cpath(name, 1), value, BigInt(value.length), flags) !== 0) throw errno();
}

/** llistxattr: the NUL-separated names, or their length when `size` is 0. */
export function listxattr(path: string, size: number): Buffer | number {
  const target = size === 0 ? null : size <= xattrBuffer.length ? xattrBuffer : Buffer.alloc(size);
  const length = Number(libc().llistxattr(cpath(path), target, BigInt(size)));
  if (length < 0) throw errno();
  return target ? Buffer.from(target.subarray(0, length)) : length;
}

export function removexattr(path: string, name: string): void {
  if (libc().lremovexattr(cpath(path), cpath(name, 1)) !== 0) throw errno();
}

export function fallocate(fd: number, mode: number, offset: number, length: number): void {
  if (libc().fallocate(fd, mode, BigInt(offset), BigInt(length)) !== 0) throw errno();
}

export interface StatFs {
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  bsize: number;
  namelen: number;
  frsize: number;
}

const statvfsBuffer = Buffer.alloc(128);

export function statfs(path: string): StatFs {
  if (libc().statvfs(cpath(path), statvfsBuffer) !== 0) throw errno();
  const b = statvfsBuffer;
  // struct statvfs on 64-bit Linux: bsize, frsize, blocks, bfree, bavail, files, ffree, favail, fsid, flag, namemax.
  return { bsize: u64At(b, 0), frsize: u64At(b, 8), blocks: u64At(b, 16), bfree: u64At(b, 24), bavail: u64At(b, 32), files: u64At(b, 40), ffree: u64At(b, 48), namelen: u64At(b, 80) };
}

export const MS_NOSUID = 2;
export const MS_NODEV = 4;
export const MNT_DETACH = 2;

export function mount(source: string, target: string, type: string, flags: number, data: string): void {
  if (libc().mount(cstring(source), Buffer.from(`${target}\0`, "latin1"), cstring(type), BigInt(flags), cstring(data)) !== 0) throw errno();
}

export function umount2(target: string, flags: number): void {
  if (libc().umount2(Buffer.from(`${target}\0`, "latin1"), flags) !== 0) throw errno();
}

const AF_UNIX = 1;
const SOCK_STREAM = 1;
const SOCK_CLOEXEC = 0o2000000;

/** A connected pair of Unix stream sockets, close-on-exec. */
export function socketPair(): [number, number] {
  const fds = new Int32Array(2);
  if (libc().socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) !== 0) throw errno();
  return [fds[0]!, fds[1]!];
}

const SOL_SOCKET = 1;
const SCM_RIGHTS = 1;

/** Receives one descriptor sent with SCM_RIGHTS; undefined at end of stream. */
export function receiveFd(socket: number): number | undefined {
  const data = Buffer.alloc(1);
  const control = Buffer.alloc(24);
  const iov = Buffer.alloc(16);
  iov.writeBigUInt64LE(BigInt(addressOf(data)), 0);
  iov.writeBigUInt64LE(1n, 8);
  // struct msghdr: name, namelen, iov, iovlen, control, controllen, flags (56 bytes).
  const msg = Buffer.alloc(56);
  msg.writeBigUInt64LE(BigInt(addressOf(iov)), 16);
  msg.writeBigUInt64LE(1n, 24);
  msg.writeBigUInt64LE(BigInt(addressOf(control)), 32);
  msg.writeBigUInt64LE(BigInt(control.length), 40);
  for (;;) {
    // data, iov and control are only pointed to (from iov and msg): pinned while the call waits.
    const received = withPinned([data, iov, control], () => Number(libc().recvmsg(socket, msg, 0)));
    if (received < 0) {
      if (errno() === 4) continue;
      throw errno();
    }
    if (received === 0) return undefined;
    const controlLength = Number(msg.readBigUInt64LE(40));
    if (controlLength >= 20 && control.readInt32LE(8) === SOL_SOCKET && control.readInt32LE(12) === SCM_RIGHTS) return control.readInt32LE(16);
    return undefined;
  }
}

const addressOf = (buffer: Buffer) => pointerOf(buffer);

/** The symbolic name of an errno (ENOENT…), for messages. */
export function errnoName(code: number): string {
  return Object.entries(osConstants().errno).find(([, value]) => value === code)?.[0] ?? `errno ${code}`;
}
