// Running instances of this build (reference §11): <app>/instance/<pid> directories whose
// launcher is still the same process (its start time is recorded, so a reused PID is never
// taken for an instance), sorted by PID.
//
// A run holds a shared lock on its directory's `.alive` for its whole life (the launcher
// takes it, the supervisor it becomes keeps it). A directory whose lock can be taken
// exclusively belongs to a run that has ended, however it ended; the lock also tells a run of
// another PID namespace sharing this runtime directory (a toolbox container and its host share
// $XDG_RUNTIME_DIR) from a dead one, which its PID cannot.
//
// A sweep decides and removes under an exclusive lock on `.sweep.lock`, which a run takes
// shared while it locks its `.alive`: a run under a reused PID, locking its `.alive` in the
// directory an ended run of that PID left, cannot lose it to a sweep that found the old one
// free an instant before.
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "../../lib/fs.ts";
import type { Launch } from "../../core/launch.ts";
import { flock, keepAcrossExec, LOCK_SH, tryLockExclusive } from "../../core/libc.ts";
import { entriesOf } from "../../core/paths.ts";
import { alive, startTime } from "../../core/proc.ts";
import type { Runtime } from "../../core/runtime.ts";

export { startTime };

const ALIVE = ".alive";
const SWEEP_LOCK = ".sweep.lock";

/** Takes this run's instance directory (its lock kept across the hand-over), and sweeps those of ended runs. */
export function claimInstanceDir(runtime: Runtime, launch: Launch): void {
  const { instance, app } = runtime.paths;
  mkdirSync(`${app}/instance`, { recursive: true });
  const sweepLock = openSync(`${app}/instance/${SWEEP_LOCK}`, "a");
  let fd: number;
  try {
    // No sweep decides while this run makes its directory and locks its `.alive` (a sweep
    // holds it for a few milliseconds at most: it removes only ended runs' directories).
    flock(sweepLock, LOCK_SH);
    mkdirSync(instance, { recursive: true });
    // Locked before it has its name: a reader never finds this run's `.alive` unlocked.
    fd = openSync(`${instance}/${ALIVE}.new`, "w");
    flock(fd, LOCK_SH);
    renameSync(`${instance}/${ALIVE}.new`, `${instance}/${ALIVE}`);
  } finally {
    closeSync(sweepLock);
  }
  keepAcrossExec(fd);
  launch.heldFds.push(fd);
  sweepEnded(`${app}/instance`);
}

/** Marks this process's instance directory as a running instance. */
export function registerInstance(runtime: Runtime, root: boolean): void {
  writeFileSync(`${runtime.paths.instance}/instance.json`, JSON.stringify({ started: startTime("self"), root }));
}

/** Whether the run of an instance directory has ended: its lock is free; without one (a run killed before it took it), its PID. */
function ended(dir: string, pid: number): boolean {
  let fd: number;
  try {
    fd = openSync(`${dir}/${pid}/${ALIVE}`, "r");
  } catch {
    return !alive(pid);
  }
  try {
    return tryLockExclusive(fd);
  } finally {
    closeSync(fd);
  }
}

function instanceNames(dir: string): number[] {
  return entriesOf(dir)
    .filter((name) => /^[1-9]\d*$/.test(name) && Number(name) !== process.pid)
    .map(Number);
}

function sweepEnded(dir: string): void {
  const names = instanceNames(dir);
  if (names.length === 0) return;
  let lock: number;
  try {
    lock = openSync(`${dir}/${SWEEP_LOCK}`, "a");
  } catch {
    return; // a directory we cannot write: nothing to sweep for us
  }
  try {
    // A run locking its `.alive`, or another sweep: this one is left to the next start.
    if (!tryLockExclusive(lock)) return;
    for (const pid of names) {
      if (!ended(dir, pid)) continue;
      try {
        rmSync(`${dir}/${pid}`, { recursive: true, force: true });
      } catch {
        // left for the next sweep: a run must not fail for another's left-overs
      }
    }
  } finally {
    closeSync(lock);
  }
}

export function liveInstances(runtime: Runtime): number[] {
  const dir = `${runtime.paths.app}/instance`;
  sweepEnded(dir);
  return instanceNames(dir)
    .filter((pid) => {
      try {
        const { started } = JSON.parse(readFileSync(`${dir}/${pid}/instance.json`, "utf8")) as { started?: string };
        // Another process under a reused PID, or a run of another PID namespace: not one to enter.
        return started !== undefined && started === startTime(pid);
      } catch {
        return false; // not (yet) an instance: a run still preparing
      }
    })
    .sort((a, b) => a - b);
}

function childPid(file: string): number | undefined {
  try {
    const match = /"child-pid":\s*(\d+)/.exec(readFileSync(file, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

function status(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/status`, "utf8");
  } catch {
    return "";
  }
}

/**
 * Host PID of the guest's sandbox in an instance: bwrap reports it as a PID of the data
 * directory's namespace (guest.json), which is the second NSpid entry of a descendant of the
 * instance's own supervisor (the instance's PID) that lives in that namespace.
 */
export function guestPid(runtime: Runtime, instance: number): number | undefined {
  const inner = childPid(`${runtime.paths.app}/instance/${instance}/guest.json`);
  if (inner === undefined) return undefined;
  for (const name of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    const info = status(Number(name));
    const nspid = /^NSpid:\s+(.*)$/m.exec(info)?.[1]?.split(/\s+/).map(Number);
    if (!nspid || nspid[1] !== inner) continue;
    // Climb to the instance: another data directory's namespace may use the same inner PID.
    for (let pid = Number(name), depth = 0; pid > 1 && depth < 8; depth++) {
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status(pid))?.[1] ?? 0);
      if (ppid === instance) return Number(name);
      pid = ppid;
    }
  }
  return undefined;
}
