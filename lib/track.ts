// What a run's planning consulted of the host, so that the boot stub can replay the plan
// when none of it changed (plugins/sandbox/replay.ts, fim_stub.c "replay"). lib/fs reports
// every read of a path while a watch is on; code whose effect a replay would skip (a command
// run from a stored `$(…)`, a notification) says so with `cannotReplay`.
import type * as NodeFs from "node:fs";

/** How the stub checks a dependency again: its stat(2) or lstat(2) signature, realpath(3), or its bytes. */
export type DependencyKind = "stat" | "lstat" | "realpath" | "content";

export interface Dependency {
  kind: DependencyKind;
  path: string;
  /** What the stub must find: a signature (`signature`), the resolved path, or the bytes. */
  value: string;
}

export interface Watch {
  readonly dependencies: Map<string, Dependency>;
  readonly blockers: string[];
  /** Trees whose reads are not dependencies: what the replay itself makes or checks. */
  readonly ignored: string[];
}

let current: Watch | undefined;

export function startWatch(ignored: string[] = []): Watch {
  current = { dependencies: new Map(), blockers: [], ignored };
  return current;
}

export function stopWatch(): void {
  current = undefined;
}

export const watching = (): boolean => current !== undefined;

/** Something the run does that a replay of its plan would not do again. */
export function cannotReplay(why: string): void {
  current?.blockers.push(why);
}

/** The stat(2) fields that name a file's state, as the stub prints them; "-<errno name>" when it has none. */
export function signature(fs: typeof NodeFs, path: string, follow: boolean): string {
  try {
    const s = (follow ? fs.statSync : fs.lstatSync)(path, { bigint: true });
    return [s.dev, s.ino, s.mode, s.uid, s.gid, s.size, s.mtimeNs, s.ctimeNs].join(":");
  } catch (error) {
    return `-${(error as NodeJS.ErrnoException).code ?? "error"}`;
  }
}

const PROCESS_STATE = /^\/proc\/(self|thread-self|\d+)(\/|$)/;

/**
 * Notes a read of `path` before it happens (a change after the note changes the signature the
 * stub compares). `how` is what the caller does: follow symbolic links or not, resolve it,
 * or read a file's bytes.
 */
export function noteRead(fs: typeof NodeFs, path: unknown, how: "stat" | "lstat" | "realpath" | "read"): void {
  const watch = current;
  if (!watch) return;
  if (typeof path !== "string") {
    if (typeof path !== "number") watch.blockers.push("a path given as bytes was read");
    return; // a descriptor: its opening was noted
  }
  const absolute = path.startsWith("/") ? path : `${process.cwd()}/${path}`;
  if (watch.ignored.some((tree) => absolute === tree || absolute.startsWith(`${tree}/`))) return;
  // Processes' state (the holder's start time, our own): the stub checks the holder itself.
  if (PROCESS_STATE.test(absolute)) return;
  const pseudo = absolute.startsWith("/proc/") || absolute.startsWith("/sys/");
  let dependency: Dependency;
  if (pseudo) {
    // Their stat(2) says nothing of their content: the stub compares the bytes.
    if (how !== "read") {
      watch.blockers.push(`'${absolute}' was looked at`);
      return;
    }
    let value: string;
    try {
      value = fs.readFileSync(absolute, "latin1");
    } catch (error) {
      value = `-${(error as NodeJS.ErrnoException).code ?? "error"}`;
    }
    dependency = { kind: "content", path: absolute, value };
  } else if (how === "realpath") {
    let value: string;
    try {
      value = fs.realpathSync(absolute);
    } catch (error) {
      value = `-${(error as NodeJS.ErrnoException).code ?? "error"}`;
    }
    dependency = { kind: "realpath", path: absolute, value };
  } else {
    const kind = how === "lstat" ? "lstat" : "stat";
    dependency = { kind, path: absolute, value: signature(fs, absolute, kind === "stat") };
  }
  const key = `${dependency.kind}\0${absolute}`;
  if (!watch.dependencies.has(key)) watch.dependencies.set(key, dependency);
}
