// <app>/sbin: a link per busybox applet, last on the guest's PATH (reference §7.3). Made
// once per build in a temporary directory that is renamed into place; those of runs killed
// while making it are swept by the next one that makes it.
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from "../../lib/fs.ts";
import { basename, dirname } from "../../lib/path.ts";
import { leftoversOfEnded } from "../../core/proc.ts";
import type { Runtime } from "../../core/runtime.ts";

function sweepTemporaries(sbin: string): void {
  const pattern = new RegExp(`^${basename(sbin)}\\.(\\d+)\\.tmp$`);
  for (const name of leftoversOfEnded(dirname(sbin), pattern)) rmSync(`${dirname(sbin)}/${name}`, { recursive: true, force: true });
}

export async function ensureApplets(runtime: Runtime): Promise<void> {
  const { sbin } = runtime.paths;
  if (existsSync(sbin)) return;
  const busybox = await runtime.tool("busybox");
  const listed = Bun.spawnSync([busybox, "--list"], { stdout: "pipe", stderr: "ignore" });
  if (listed.exitCode !== 0) return;
  sweepTemporaries(sbin);
  const temporary = `${sbin}.${process.pid}.tmp`;
  mkdirSync(temporary, { recursive: true });
  for (const applet of listed.stdout.toString().split("\n")) {
    if (/^[A-Za-z0-9_.[-]+$/.test(applet)) symlinkSync(busybox, `${temporary}/${applet}`);
  }
  try {
    renameSync(temporary, sbin);
  } catch {
    rmSync(temporary, { recursive: true, force: true }); // another run made it first
  }
}
