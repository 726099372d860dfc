// node:fs, loaded on its first call. Importing it costs a start ~1.4 ms by itself (a trivial
// program that imports it takes 1.24x as long; 3-4 % of `fim-perms list` once the C calls
// below replace it), and a brief command needs none of it: `fim-perms list` reads the image, asks whether a
// directory is writable and prints through the C library (the functions at the end). Every
// module of the launcher imports these instead of node:fs; FIM_PROFILE=1 says when node:fs
// was loaded, and by what.
import type * as NodeFs from "node:fs";
import { basicLibc, cString, errno } from "./libc.ts";
import { noteRead, watching } from "./track.ts";

export type { Dirent, Stats, StatsFs } from "node:fs";

type Fs = typeof NodeFs;
let fs: Fs | undefined;
let loaded: { at: number; by: string } | undefined;

/** node:fs itself. */
export function nodeFs(): Fs {
  if (!fs) {
    fs = require("node:fs") as Fs;
    // The caller, for FIM_PROFILE (readable in a build made with FIM_BUILD_NO_MINIFY=1).
    const by = process.env.FIM_PROFILE === "1" ? (new Error().stack?.split("\n").slice(2, 8).join(" | ") ?? "") : "";
    loaded = { at: performance.now(), by };
  }
  return fs;
}

/** When node:fs was loaded (performance.now()) and by what, if it was. */
export const nodeFsLoaded = (): { at: number; by: string } | undefined => loaded;

const late = <K extends keyof Fs>(name: K): Fs[K] => ((...args: unknown[]) => (nodeFs()[name] as (...args: unknown[]) => unknown)(...args)) as Fs[K];

/** A function that reads the host: noted as a dependency of the run while a watch is on (lib/track.ts). */
const reading = <K extends keyof Fs>(name: K, how: "stat" | "lstat" | "realpath" | "read"): Fs[K] =>
  ((...args: unknown[]) => {
    if (watching()) noteRead(nodeFs(), args[0], how);
    return (nodeFs()[name] as (...args: unknown[]) => unknown)(...args);
  }) as Fs[K];

/** Flags of openSync that only read (a file opened to write or lock is not something the plan read). */
const readOnly = (flags: unknown) => flags === undefined || flags === "r" || flags === 0;

/** fs.constants, read on first use (their values differ between architectures). */
export const constants: Fs["constants"] = new Proxy({} as Fs["constants"], { get: (_, key) => nodeFs().constants[key as keyof Fs["constants"]] });

export const accessSync = reading("accessSync", "stat");
export const chmodSync = late("chmodSync");
export const closeSync = late("closeSync");
export const copyFileSync = late("copyFileSync");
export const createWriteStream = late("createWriteStream");
export const existsSync = reading("existsSync", "stat");
export const fchmodSync = late("fchmodSync");
export const fchownSync = late("fchownSync");
export const fdatasyncSync = late("fdatasyncSync");
export const fstatSync = late("fstatSync");
export const fsyncSync = late("fsyncSync");
export const ftruncateSync = late("ftruncateSync");
export const lchownSync = late("lchownSync");
export const linkSync = late("linkSync");
export const lstatSync = reading("lstatSync", "lstat");
export const mkdirSync = late("mkdirSync");
export const mkdtempSync = late("mkdtempSync");
export const openSync: Fs["openSync"] = ((path: NodeFs.PathLike, flags?: NodeFs.OpenMode, mode?: NodeFs.Mode) => {
  if (watching() && readOnly(flags)) noteRead(nodeFs(), path, "read");
  return nodeFs().openSync(path, flags as NodeFs.OpenMode, mode);
}) as Fs["openSync"];
export const readdirSync = reading("readdirSync", "stat");
export const readFileSync = reading("readFileSync", "read");
export const readlinkSync = reading("readlinkSync", "lstat");
export const readSync = late("readSync");
export const realpathSync = reading("realpathSync", "realpath");
export const renameSync = late("renameSync");
export const rmdirSync = late("rmdirSync");
export const rmSync = late("rmSync");
export const statfsSync = late("statfsSync");
export const statSync = reading("statSync", "stat");
export const symlinkSync = late("symlinkSync");
export const truncateSync = late("truncateSync");
export const unlinkSync = late("unlinkSync");
export const utimesSync = late("utimesSync");
export const writeFileSync = late("writeFileSync");
export const writeSync = late("writeSync");

// What a brief command does with files, through the C library (lib/libc.ts) instead.
const O_RDONLY_CLOEXEC = 0o2000000; // O_CLOEXEC (the same on x86-64 and arm64); O_RDONLY is 0
const SEEK_END = 2;
const EINTR = 4;
const EPIPE = 32;

/** A path as the C library takes it; undefined for one it cannot (a NUL inside). */
const cPath = (path: string): Buffer | undefined => (path.includes("\0") ? undefined : cString(path));

/** Opens a file read-only (close-on-exec); a failure is thrown by node:fs, with its usual message. */
export function openForReading(path: string): number {
  if (watching()) noteRead(nodeFs(), path, "read");
  const name = cPath(path);
  const fd = name ? basicLibc().open(name, O_RDONLY_CLOEXEC) : -1;
  return fd >= 0 ? fd : openSync(path, "r");
}

export function closeFile(fd: number): void {
  basicLibc().close(fd);
}

/** The size of the file open on `fd` (it moves the file offset: every read here is positional). */
export function sizeOf(fd: number): number {
  const size = Number(basicLibc().lseek(fd, 0, SEEK_END));
  return size >= 0 ? size : fstatSync(fd).size;
}

/** `length` bytes from `position` (fewer at the end of the file). */
export function readAt(fd: number, position: number, length: number): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = Number(basicLibc().pread(fd, buffer.subarray(done), length - done, position + done));
    if (n < 0 && errno() === EINTR) continue;
    // node:fs reports a failure (EISDIR, EIO…) as callers expect it, or reads after all.
    const got = n < 0 ? readSync(fd, buffer, done, length - done, position + done) : n;
    if (got === 0) break;
    done += got;
  }
  return done === length ? buffer : buffer.subarray(0, done);
}

/** Whether this process may reach `path` as `mode` says (access(2): F_OK 0, X_OK 1, W_OK 2, R_OK 4). */
export function canAccess(path: string, mode: number): boolean {
  if (watching()) noteRead(nodeFs(), path, "stat");
  const name = cPath(path);
  return name !== undefined && basicLibc().access(name, mode) === 0;
}

/** Writes all of `text` to `fd`; false when its reader has gone (EPIPE). */
export function writeAll(fd: number, text: string): boolean {
  const bytes = Buffer.from(text);
  let done = 0;
  while (done < bytes.length) {
    const n = Number(basicLibc().write(fd, bytes.subarray(done), bytes.length - done));
    if (n >= 0) {
      done += n;
      continue;
    }
    const code = errno();
    if (code === EINTR) continue;
    if (code === EPIPE) return false;
    // A non-blocking descriptor that is full (EAGAIN), or another error: node:fs's way.
    done += writeSync(fd, bytes, done);
  }
  return true;
}
