// The few libc calls Bun does not expose: execve (relocation keeps the PID) and flock
// (serialised writes to the reserved space). Loaded lazily: dlopen costs about 1 ms.
import { dlopen, FFIType, ptr } from "bun:ffi";

const LIBC_NAMES = ["libc.so.6", "libc.musl-x86_64.so.1", "libc.musl-aarch64.so.1", "libc.so"];

const symbols = {
  execve: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  flock: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  strerror: { args: [FFIType.i32], returns: FFIType.cstring },
  fcntl: { args: [FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
} as const;

type Libc = ReturnType<typeof dlopen<typeof symbols>>["symbols"];
let loaded: Libc | undefined;

function libc(): Libc {
  if (loaded) return loaded;
  let lastError: unknown;
  for (const name of LIBC_NAMES) {
    try {
      loaded = dlopen(name, symbols).symbols;
      return loaded;
    } catch (error) {
      lastError = error;
    }
  }
  throw new Error(`Could not load the C library: ${String(lastError)}`);
}

const cString = (text: string) => Buffer.from(`${text}\0`);

function pointerArray(buffers: Buffer[]): BigUint64Array {
  const array = new BigUint64Array(buffers.length + 1);
  buffers.forEach((buffer, index) => (array[index] = BigInt(ptr(buffer))));
  return array;
}

/** Replaces the process image; returns only on failure, with the errno text. */
export function execve(path: string, argv: string[], env: Record<string, string | undefined>): string {
  const file = cString(path);
  const args = argv.map(cString);
  const vars = Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => cString(`${key}=${value}`));
  const argvArray = pointerArray(args);
  const envArray = pointerArray(vars);
  const rc = libc().execve(ptr(file), ptr(argvArray), ptr(envArray));
  return `execve returned ${rc}`;
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** Advisory whole-file lock; blocks until granted. Released on close or process death. */
export function flock(fd: number, operation: number): void {
  if (libc().flock(fd, operation) !== 0) throw new Error("flock failed");
}

/** Non-blocking exclusive lock: false when another process holds it. */
export function tryLockExclusive(fd: number): boolean {
  return libc().flock(fd, LOCK_EX | LOCK_NB) === 0;
}

const F_SETFD = 2;

/** Lets a descriptor survive execve (Node opens every file close-on-exec). */
export function keepAcrossExec(fd: number): void {
  if (libc().fcntl(fd, F_SETFD, 0) !== 0) throw new Error("fcntl(F_SETFD) failed");
}
