// Runs a layer tool with its output on our stderr, and a progress line on a terminal:
// the share of the source's bytes the tool has read so far (from /proc/<pid>/io).
import { readFileSync } from "node:fs";
import { FimError } from "../../core/errors.ts";

function bytesRead(pid: number): number {
  try {
    return Number(/^rchar: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

export async function runTool(tool: string, args: string[], label: string, source: string, sourceBytes?: number): Promise<void> {
  const { execa } = await import("execa");
  const child = execa(tool, args, { stdin: "ignore", stdout: "inherit", stderr: "inherit", reject: false });
  const showProgress = process.stderr.isTTY && sourceBytes !== undefined && sourceBytes > 0 && child.pid !== undefined;
  const timer = showProgress
    ? setInterval(() => {
        const share = Math.min(100, (100 * bytesRead(child.pid!)) / sourceBytes!);
        process.stderr.write(`\r${label}: ${share.toFixed(0).padStart(3)}% of ${(sourceBytes! / 1048576).toFixed(1)} MiB from '${source}'`);
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
