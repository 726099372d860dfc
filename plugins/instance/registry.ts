// Running instances of this build (reference §11): <app>/instance/<pid> directories whose
// launcher is still the same process (its start time is recorded, so a reused PID is never
// taken for an instance), sorted by PID.
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { leftoversOfEnded, startTime } from "../../core/proc.ts";
import type { Runtime } from "../../core/runtime.ts";

export { startTime };

/**
 * Marks this process's instance directory as a running instance, and removes those of
 * processes that are gone (a start killed before it became an instance has no record, so
 * nothing else would).
 */
export function registerInstance(runtime: Runtime, root: boolean): void {
  writeFileSync(`${runtime.paths.instance}/instance.json`, JSON.stringify({ started: startTime("self"), root }));
  sweepGone(`${runtime.paths.app}/instance`);
}

function sweepGone(dir: string): void {
  for (const name of leftoversOfEnded(dir, /^([1-9]\d*)$/)) {
    try {
      rmSync(`${dir}/${name}`, { recursive: true, force: true });
    } catch {
      // left for the next sweep: a run must not fail for another's left-overs
    }
  }
}

export function liveInstances(runtime: Runtime): number[] {
  const dir = `${runtime.paths.app}/instance`;
  sweepGone(dir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((name) => /^[1-9]\d*$/.test(name) && Number(name) !== process.pid)
    .map(Number)
    .filter((pid) => {
      let started: string | undefined;
      try {
        started = (JSON.parse(readFileSync(`${dir}/${pid}/instance.json`, "utf8")) as { started?: string }).started;
      } catch {
        return false; // not (yet) an instance: a run still preparing, or another command
      }
      if (started !== undefined && started === startTime(pid)) return true;
      // The record of a run that was killed before it could remove it: swept here.
      rmSync(`${dir}/${pid}`, { recursive: true, force: true });
      return false;
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
