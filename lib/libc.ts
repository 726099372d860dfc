// The one FFI binding to the C library: every call Bun does not expose, for the runtime
// (execve, flock, fcntl) and for the FUSE server (stat with nanoseconds, xattrs, mount…).
// Loaded on first use, bun:ffi itself too: a command that makes no such call (fim-perms
// list) does not pay for them (dlopen ~0.5 ms, the module ~0.2 ms).
import type { Pointer } from "bun:ffi";

type Ffi = typeof import("bun:ffi");
let ffiModule: Ffi | undefined;

/** bun:ffi, loaded on first use. */
export function ffi(): Ffi {
  return (ffiModule ??= require("bun:ffi") as Ffi);
}

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
  __errno_location: { args: [], returns: ptr },
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
} as const;

export type Libc = ReturnType<typeof import("bun:ffi").dlopen<typeof symbols>>["symbols"];
let loaded: Libc | undefined;

export function libc(): Libc {
  if (loaded) return loaded;
  const failures: string[] = [];
  for (const name of LIBC_NAMES) {
    try {
      loaded = ffi().dlopen(name, symbols).symbols;
      return loaded;
    } catch (error) {
      failures.push(`${name}: ${(error as Error).message}`);
    }
  }
  throw new Error(`Could not load the C library (${failures.join("; ")})`);
}

/** The errno of the last failed call. */
export function errno(): number {
  return ffi().read.i32(libc().__errno_location() as Pointer, 0);
}

/** The C library's text for an errno, as upstream prints it (e.g. "No such file or directory"). */
export function errnoText(code = errno()): string {
  return String(libc().strerror(code));
}
