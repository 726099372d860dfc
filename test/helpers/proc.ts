// Processes of the host as tests see them.
import { readdirSync, readFileSync } from "node:fs";

/** Running: neither gone nor a zombie (an orphan's zombie waits for init, which may be slow to reap it). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

/** Every descendant of a process (children first, then theirs), read from /proc; [] once it is gone. */
export function descendants(pid: number): number[] {
  const found: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      for (const child of readFileSync(`/proc/${pid}/task/${task}/children`, "utf8").trim().split(/\s+/)) {
        if (child) found.push(Number(child), ...descendants(Number(child)));
      }
    }
  } catch {
    // gone
  }
  return found;
}
