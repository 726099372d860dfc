// The one FFI binding to the C library: every call Bun does not expose, for the runtime
// (execve, flock, fcntl, waitpid) and for the FUSE server (stat with nanoseconds, xattrs, mount…).
// Bound on first use, in two tables: the few calls a brief command makes instead of loading
// node:fs (lib/fs.ts), and the rest (dlopen ~0.5 ms), which a command that makes none of
// them (fim-perms list) does not bind.
import type { Pointer } from "bun:ffi";

type Ffi = Pick<typeof import("bun:ffi"), "dlopen" | "ptr" | "read" | "toBuffer" | "toArrayBuffer" | "CString">;
let ffiModule: Ffi | undefined;

/**
 * The engine's own FFI object (`Bun.FFI`): bun:ffi's functions are these, with a JavaScript
 * module around them whose loading costs a compiled program ~0.8 ms of every start. Its
 * dlopen returns an error instead of throwing it.
 */
function nativeFfi(): Ffi | undefined {
  const native = (Bun as unknown as { FFI?: Ffi }).FFI;
  if (!native || typeof native.dlopen !== "function" || typeof native.ptr !== "function" || typeof native.read?.i32 !== "function") return undefined;
  const open = native.dlopen;
  return {
    ...native,
    dlopen: ((path: string, symbols: never) => {
      const result = open(path, symbols) as unknown;
      if (result instanceof Error) throw result;
      return result;
    }) as Ffi["dlopen"],
  };
}

/** A string as the C library takes it, NUL-ended. */
export const cString = (text: string): Buffer => Buffer.from(`${text}\0`);

/** The FFI functions: the engine's own, or bun:ffi's module when this Bun has none. */
export function ffi(): Ffi {
  return (ffiModule ??= nativeFfi() ?? (require("bun:ffi") as Ffi));
}

/** Whether the engine's own FFI object is used (a test checks it still is after a Bun upgrade). */
export const usesNativeFfi = (): boolean => nativeFfi() !== undefined;

/** The address of a buffer's bytes, for a call. */
export const pointerOf = (buffer: NodeJS.TypedArray | DataView): Pointer => ffi().ptr(buffer);

const pinned = new Set<readonly object[]>();

/**
 * Runs `call` with `buffers` kept alive. A buffer passed as an argument is kept alive by the
 * call; one only pointed to from another buffer (argv's strings, a msghdr's iovec) is not,
 * since its address is a number, and the collector may take it while the call runs.
 */
export function withPinned<T>(buffers: readonly object[], call: () => T): T {
  pinned.add(buffers);
  try {
    return call();
  } finally {
    pinned.delete(buffers);
  }
}

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];
const [i32, i64, u64, ptr, cstring] = ["i32", "i64", "u64", "ptr", "cstring"] as const;

const symbols = {
  strerror: { args: [i32], returns: cstring },
  execve: { args: [ptr, ptr, ptr], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  fcntl: { args: [i32, i32, i32], returns: i32 },
  isatty: { args: [i32], returns: i32 },
  linkat: { args: [i32, ptr, i32, ptr, i32], returns: i32 },
  // fstatat and mknod became exported functions only in glibc 2.33: the raw system calls
  // work with every C library. Pointers are passed as numbers.
  syscall: { args: [i64, i64, i64, i64, i64], returns: i64 },
  utimensat: { args: [i32, ptr, ptr, i32], returns: i32 },
  lgetxattr: { args: [ptr, ptr, ptr, u64], returns: i64 },
  lsetxattr: { args: [ptr, ptr, ptr, u64, i32], returns: i32 },
  llistxattr: { args: [ptr, ptr, u64], returns: i64 },
  lremovexattr: { args: [ptr, ptr], returns: i32 },
  mount: { args: [ptr, ptr, ptr, u64, ptr], returns: i32 },
  umount2: { args: [ptr, i32], returns: i32 },
  socketpair: { args: [i32, i32, i32, ptr], returns: i32 },
  recvmsg: { args: [i32, ptr, i32], returns: i64 },
  statvfs: { args: [ptr, ptr], returns: i32 },
  fallocate: { args: [i32, i32, i64, i64], returns: i32 },
  waitpid: { args: [i32, ptr, i32], returns: i32 },
} as const;

// What a brief command calls (lib/fs.ts: read the image, ask whether a directory is
// writable, print), bound on its own: binding the table above costs ~0.5 ms, this ~0.15.
const basicSymbols = {
  __errno_location: { args: [], returns: ptr },
  open: { args: [ptr, i32], returns: i32 },
  pread: { args: [i32, ptr, u64, i64], returns: i64 },
  write: { args: [i32, ptr, u64], returns: i64 },
  lseek: { args: [i32, i64, i32], returns: i64 },
  close: { args: [i32], returns: i32 },
  access: { args: [ptr, i32], returns: i32 },
} as const;

type Bound<S extends Record<string, import("bun:ffi").FFIFunction>> = ReturnType<typeof import("bun:ffi").dlopen<S>>["symbols"];
export type Libc = Bound<typeof symbols>;
export type BasicLibc = Bound<typeof basicSymbols>;

function bind<S extends Record<string, import("bun:ffi").FFIFunction>>(table: S): Bound<S> {
  const failures: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      return ffi().dlopen(name, table).symbols;
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Could not load the C library (${failures.join("; ")})`);
}

let loaded: Libc | undefined;
let basic: BasicLibc | undefined;

export const libc = (): Libc => (loaded ??= bind(symbols));
export const basicLibc = (): BasicLibc => (basic ??= bind(basicSymbols));

/** The errno of the last failed call. */
export function errno(): number {
  return ffi().read.i32(basicLibc().__errno_location() as Pointer, 0);
}

/** The C library's text for an errno, as upstream prints it (e.g. "No such file or directory"). */
export function errnoText(code = errno()): string {
  return String(libc().strerror(code));
}
