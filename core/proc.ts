// Facts about processes read from /proc.
import { readFileSync } from "../lib/fs.ts";
import { entriesOf } from "./paths.ts";

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat): with the PID, it names one process. */
export function startTime(pid: number | "self"): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** The parent of a process, when it exists. */
export function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

/** The children of a process (one thread's list is enough: ours are single-threaded). */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Whether a process of that id exists (one of another user's too); left-overs of dead ones are swept. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Entries of `dir` named after a process that has ended (the pattern's first group is its
 * PID; never this process's): what a killed process left behind. None when `dir` cannot be read.
 */
export function leftoversOfEnded(dir: string, pattern: RegExp): string[] {
  return entriesOf(dir).filter((name) => {
    const pid = Number(pattern.exec(name)?.[1] ?? 0);
    return pid > 0 && pid !== process.pid && !alive(pid);
  });
}
