// The runtime's few libc calls (bound in lib/libc.ts): execve (relocation and the run's
// hand-over keep the PID), flock (serialised writes; the data directory's lock), linkat
// (giving a name to an O_TMPFILE file), isatty (node:tty costs ~4 ms of every start) and
// waitpid (a child Bun did not start: the holder the boot stub started).
// Failures carry the C library's errno text.
import { cString, errno, errnoText, libc, pointerOf as ptr, withPinned } from "../lib/libc.ts";

function pointerArray(buffers: Buffer[]): BigUint64Array {
  const array = new BigUint64Array(buffers.length + 1);
  buffers.forEach((buffer, index) => (array[index] = BigInt(ptr(buffer))));
  return array;
}

/** Replaces the process image; returns only on failure, with the errno text. */
export function execve(path: string, argv: string[], env: Record<string, string | undefined>): string {
  const args = argv.map(cString);
  const vars = Object.entries(env)
    .filter((entry): entry is [string, string] => entry[1] !== undefined)
    .map(([key, value]) => cString(`${key}=${value}`));
  // The strings are only pointed to from the arrays: pinned until the call returns (on failure).
  return withPinned([...args, ...vars], () => {
    libc().execve(cString(path), pointerArray(args), pointerArray(vars));
    return errnoText();
  });
}

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;

/** Advisory whole-file lock; blocks until granted. Released on close or process death. */
export function flock(fd: number, operation: number): void {
  if (libc().flock(fd, operation) !== 0) throw new Error(`flock failed: ${errnoText()}`);
}

/** Non-blocking lock (exclusive unless `operation` says LOCK_SH): false when another process holds it. */
export function tryLock(fd: number, operation = LOCK_EX): boolean {
  return libc().flock(fd, operation | LOCK_NB) === 0;
}

export const tryLockExclusive = (fd: number) => tryLock(fd, LOCK_EX);

const F_SETFD = 2;

/** Lets a descriptor survive execve (Node opens every file close-on-exec). */
export function keepAcrossExec(fd: number): void {
  if (libc().fcntl(fd, F_SETFD, 0) !== 0) throw new Error(`fcntl(F_SETFD) failed: ${errnoText()}`);
}

const AT_FDCWD = -100;
const AT_SYMLINK_FOLLOW = 0x400;

/** Links the file open on `fd` (e.g. made with O_TMPFILE) at `path`; throws with the errno. */
export function linkDescriptor(fd: number, path: string): void {
  if (libc().linkat(AT_FDCWD, cString(`/proc/self/fd/${fd}`), AT_FDCWD, cString(path), AT_SYMLINK_FOLLOW) === 0) return;
  throw new Error(`linkat '${path}': ${errnoText()}`);
}

/** Whether the descriptor is a terminal. */
export function isTerminal(fd: number): boolean {
  return libc().isatty(fd) === 1;
}

/** Waits for a child that Bun did not start; its exit code (128+N for signal N), or undefined when it is not our child. */
export function reap(pid: number): number | undefined {
  const status = new Int32Array(1);
  for (;;) {
    if (libc().waitpid(pid, status, 0) === pid) break;
    if (errno() !== 4 /* EINTR */) return undefined;
  }
  const value = status[0]!;
  return (value & 0x7f) === 0 ? (value >> 8) & 0xff : 128 + (value & 0x7f);
}
