// Services the plugins share: the data directory's lock, the overlay's work directory, and
// helper tools bound to the launcher's life.
import { mkdirSync, openSync, closeSync } from "../lib/fs.ts";
import { tryLockExclusive } from "./libc.ts";
import type { Runtime } from "./runtime.ts";

/**
 * The writable root of a data directory is mounted by one namespace holder at a time: it
 * holds this lock for as long as it lives. A descriptor holding it, or undefined when another
 * holder (e.g. of another build of the image) has it.
 */
export function tryLockDataDirectory(runtime: Runtime): number | undefined {
  const { data } = runtime.paths;
  mkdirSync(data, { recursive: true });
  const fd = openSync(`${data}/.lock`, "a");
  if (tryLockExclusive(fd)) return fd;
  closeSync(fd);
  return undefined;
}

/** The overlay's work directory of the data directory's holder (one holder at a time: one path; it empties it first). */
export function workDirectory(runtime: Runtime): string {
  return `${runtime.paths.data}/work/holder`;
}

/**
 * The argv that starts a helper tool so that it ends with this process (fim_sigdfl
 * --die-with-parent): for a tool whose work is useless once the launcher is gone (a killed
 * `fim-layer commit` leaves no mkfs.erofs working on). Not for one that must finish what it
 * began (update-mime-database rewriting its cache) or outlive the run (notify-send).
 */
export async function boundToLauncher(runtime: Runtime, tool: string): Promise<string[]> {
  return [await runtime.tool("fim_sigdfl"), "--die-with-parent", String(process.pid), await runtime.tool(tool)];
}
