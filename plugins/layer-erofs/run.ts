// Runs a layer tool with its output on our stderr, and a progress line on a terminal: how
// much of the source the tool has read and how much it has written (from /proc/<pid>/io;
// mkfs.erofs reads the files more than once, so both are shown).
import { readFileSync } from "node:fs";
import { FimError } from "../../core/errors.ts";

function io(pid: number): { read: number; written: number } {
  try {
    const text = readFileSync(`/proc/${pid}/io`, "utf8");
    return { read: Number(/^rchar: (\d+)$/m.exec(text)?.[1] ?? 0), written: Number(/^wchar: (\d+)$/m.exec(text)?.[1] ?? 0) };
  } catch {
    return { read: 0, written: 0 };
  }
}

const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

export async function runTool(tool: string, args: string[], label: string, source: string, sourceBytes?: number): Promise<void> {
  const { execa } = await import("execa");
  const child = execa(tool, args, { stdin: "ignore", stdout: "inherit", stderr: "inherit", reject: false });
  const showProgress = process.stderr.isTTY && sourceBytes !== undefined && sourceBytes > 0 && child.pid !== undefined;
  const timer = showProgress
    ? setInterval(() => {
        const { read, written } = io(child.pid!);
        process.stderr.write(`\r${label}: read ${mib(read)} MiB (source: ${mib(sourceBytes!)} MiB in '${source}'), wrote ${mib(written)} MiB `);
      }, 250)
    : undefined;
  const result = await child;
  if (timer) {
    clearInterval(timer);
    process.stderr.write("\n");
  }
  if (result.failed) {
    const why = result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`;
    throw new FimError(`${label} ${why}`);
  }
}
