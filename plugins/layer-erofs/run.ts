// Runs a layer tool with its output on our stderr, and its progress (core/progress.ts): how
// much of the source it has read and how much it has written, from /proc/<pid>/io (at the
// default levels mkfs.erofs reads each file once, so what it read of the source's bytes is
// a fair percentage).
import { readFileSync, statSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import { mib, percent, Progress } from "../../core/progress.ts";

function io(pid: number | undefined): { read: number; written: number } | undefined {
  if (pid === undefined) return undefined;
  try {
    const text = readFileSync(`/proc/${pid}/io`, "utf8");
    return { read: Number(/^rchar: (\d+)$/m.exec(text)?.[1] ?? 0), written: Number(/^wchar: (\d+)$/m.exec(text)?.[1] ?? 0) };
  } catch {
    return undefined;
  }
}

export interface ToolProgress {
  /** Shown before the figures, e.g. `mkfs.erofs`. */
  label: string;
  /** Bytes of file data in the source. */
  sourceBytes: number;
  /** The file the tool writes: its size is what the final state shows as written. */
  output?: string;
  /** Prints a progress line when stderr is not a terminal. */
  say: (line: string) => void;
}

/**
 * `command`: the program and what comes before `args` (a wrapper that binds the tool's life to
 * ours keeps its PID, so /proc/<pid>/io is still the tool's). `quiet`: lines of the tool's
 * stderr that are known to be harmless go to `debug` instead (the rest is passed through).
 */
export async function runTool(command: string[], args: string[], label: string, progress?: ToolProgress, quiet?: { patterns: RegExp[]; debug: (line: string) => void }): Promise<void> {
  const { execa } = await import("execa");
  const [program, ...before] = command;
  const child = execa(program!, [...before, ...args], { stdin: "ignore", stdout: "inherit", stderr: quiet ? "pipe" : "inherit", reject: false, buffer: false });
  if (quiet) {
    let pending = "";
    const flush = (text: string) => {
      for (const line of text.split("\n")) {
        if (line === "") continue;
        if (quiet.patterns.some((pattern) => pattern.test(line))) quiet.debug(line);
        else process.stderr.write(`${line}\n`);
      }
    };
    child.stderr!.on("data", (chunk: Buffer) => {
      const text = pending + chunk.toString();
      const end = text.lastIndexOf("\n");
      pending = text.slice(end + 1);
      flush(text.slice(0, end + 1));
    });
    child.stderr!.on("end", () => flush(pending));
  }
  // The last figures seen: /proc/<pid>/io is gone once the tool has been reaped. What was
  // written is the output's size when there is one (mkfs.erofs writes some blocks twice).
  let seen = { read: 0, written: 0 };
  let complete = false;
  const outputSize = () => (progress?.output ? statSync(progress.output, { throwIfNoEntry: false })?.size : undefined);
  const bar = progress
    ? new Progress(
        progress.label,
        () => {
          if (!complete) {
            const now = io(child.pid);
            if (now) seen = { read: now.read, written: outputSize() ?? now.written };
          }
          const read = complete ? progress.sourceBytes : Math.min(seen.read, progress.sourceBytes);
          return `${percent(read, progress.sourceBytes, complete)} (${mib(read)} of ${mib(progress.sourceBytes)} MiB read, ${mib(seen.written)} MiB written)`;
        },
        progress.say,
      ).watch()
    : undefined;
  const result = await child;
  complete = !result.failed;
  if (complete) seen = { read: seen.read, written: outputSize() ?? seen.written };
  bar?.end();
  if (result.failed) {
    const why = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    throw new FimError(`${label} ${why}`);
  }
}
