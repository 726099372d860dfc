// fim-layer create and commit (reference §12.1, §12.3): gather a directory, compress it
// with the layer format, and for a commit put the layer in place and erase what it captured
// from the upper directory. What the bundle declares as not the application (its package
// manager's lists and caches) is left out of a commit's layer and stays in the upper
// directory, so the next install does not need to refresh them.
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from "../../lib/fs.ts";
import { prepareDataDir } from "../../core/data-dir.ts";
import { FimError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { percent, Progress } from "../../core/progress.ts";
import type { Runtime } from "../../core/runtime.ts";
import { appendLayer } from "./append.ts";
import { bytePath, gather, type Gathered } from "./gather.ts";

const DEFAULT_FORMAT = "erofs";
const MAX_LAYER = 999;

/** FIM_COMPRESSION_LEVEL: an integer clamped to 0..9, 7 when absent or not a number. */
export function compressionLevel(log: Logger): number {
  const text = process.env.FIM_COMPRESSION_LEVEL;
  if (text === undefined) log.debug("Could not read variable 'FIM_COMPRESSION_LEVEL'");
  const level = text !== undefined && /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : 7;
  return Math.max(0, Math.min(9, level));
}

/** The format new layers are made in. */
export function defaultFormat(runtime: Runtime) {
  const format = runtime.layerFormats.get(DEFAULT_FORMAT) ?? [...runtime.layerFormats.values()][0];
  if (!format) throw new FimError("No layer format plugin is compiled into this image");
  return format;
}

function gatherSource(log: Logger, source: string, leaveOut: readonly string[] = []): Gathered {
  log.info("Gathering files to compress...");
  let info;
  try {
    info = statSync(source);
  } catch {
    throw new FimError(`Source directory '${source}' does not exist`);
  }
  if (!info.isDirectory()) throw new FimError(`Source '${source}' is not a directory`);
  return gather(source, log, leaveOut);
}

/** Compresses what was gathered from `source` into `output` (built beside it and renamed: a failed or killed build leaves nothing). */
export async function compress(runtime: Runtime, log: Logger, source: string, output: string, gathered: Gathered): Promise<void> {
  const format = defaultFormat(runtime);
  const level = compressionLevel(log);
  log.info(`Compression level: '${level}'`);
  log.info(`Compress filesystem to '${output}'`);
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    await format.create({ source, output: temporary, level, exclude: gathered.exclude, bytes: gathered.bytes });
    renameSync(temporary, output);
  } finally {
    rmSync(temporary, { force: true });
  }
  log.info("Filesystem created without errors");
}

export async function createLayer(runtime: Runtime, log: Logger, source: string, output: string): Promise<void> {
  await compress(runtime, log, source, output, gatherSource(log, source));
}

/** Removes what a commit captured from the upper directory, children before parents. */
function eraseCommitted(upper: string, entries: string[], log: Logger): void {
  let done = 0;
  const bar = new Progress("Erasing", () => `${percent(done, entries.length, done === entries.length)} (${done} of ${entries.length} entries)`, (line) => log.info(line));
  for (let i = entries.length - 1; i >= 0; i--, done++) {
    bar.tick();
    const path = bytePath(upper, entries[i]!);
    try {
      const info = lstatSync(path, { throwIfNoEntry: false });
      if (!info) continue;
      if (!info.isDirectory()) unlinkSync(path);
      else {
        try {
          rmdirSync(path);
        } catch (error) {
          // What the commit left out (or wrote meanwhile) keeps its directory.
          const code = (error as NodeJS.ErrnoException).code;
          if (code !== "ENOTEMPTY" && code !== "EEXIST") throw error;
        }
      }
    } catch (error) {
      log.warn(`Could not remove file ${path.toString()}: ${(error as Error).message}`);
    }
  }
  bar.end();
  log.info("Finished erasing files");
}

function nextLayerNumber(dir: string): number {
  let high = -1;
  for (const name of readdirSync(dir)) {
    const match = /layer-(\d+)\.layer/.exec(name);
    if (match && statSync(`${dir}/${name}`).isFile()) high = Math.max(high, Number(match[1]));
  }
  return high + 1;
}

/** rename(2), or copy-then-rename when the destination is on another filesystem. */
function moveAcross(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EXDEV") throw error;
    const temporary = `${to}.${process.pid}.tmp`;
    try {
      copyFileSync(from, temporary);
      renameSync(temporary, to);
    } finally {
      rmSync(temporary, { force: true });
    }
    rmSync(from, { force: true });
  }
}

/** The directories above the left-out paths: kept in the layer only as the way to them. */
function onlyTheWayTo(leftOut: string[]): Set<string> {
  const ancestors = new Set<string>();
  for (const path of leftOut) {
    const parts = Buffer.from(path).toString("latin1").split("/");
    for (let i = 1; i < parts.length; i++) ancestors.add(parts.slice(0, i).join("/"));
  }
  return ancestors;
}

export async function commit(runtime: Runtime, log: Logger, mode: "binary" | "layer" | "file", destination: string | undefined): Promise<void> {
  const { upper, tmp, layers } = runtime.paths;
  prepareDataDir(runtime.paths); // someone else's upper directory must not end up in the image
  if (readdirSync(upper).length === 0) throw new FimError(`Nothing to commit: '${upper}' is empty`);
  if (destination && existsSync(destination)) throw new FimError("Destination file already exists");
  const leaveOut = runtime.bundle.commitExcludes ?? [];
  const gathered = gatherSource(log, upper, leaveOut);
  if (gathered.leftOut.length > 0) {
    log.info(`Left out of the layer (they stay in '${upper}'): ${gathered.leftOut.join(", ")}`);
    const ways = onlyTheWayTo(gathered.leftOut);
    if (gathered.entries.every((entry) => ways.has(entry))) {
      throw new FimError(`Nothing to commit: '${upper}' holds only what commits leave out (${gathered.leftOut.join(", ")})`);
    }
  }
  const staged = `${tmp}/layer.tmp`;
  await compress(runtime, log, upper, staged, gathered);
  if (mode === "binary") {
    appendLayer(runtime.image, staged);
    log.info(`Included novel layer from file '${staged}'`);
    rmSync(staged, { force: true });
    log.info("Filesystem appended to binary without errors");
  } else if (mode === "layer") {
    mkdirSync(layers, { recursive: true });
    if (!statSync(layers).isDirectory()) throw new FimError("Destination should be a directory");
    const number = nextLayerNumber(layers);
    if (number > MAX_LAYER) throw new FimError("Maximum number of layers exceeded");
    const path = `${layers}/layer-${String(number).padStart(3, "0")}.layer`;
    renameSync(staged, path);
    log.info(`Layer number: ${number}`);
    log.info(`Layer path: ${path}`);
    log.info(`Layer saved to '${path}'`);
  } else {
    moveAcross(staged, destination!);
    log.info(`Layer saved to '${destination}'`);
  }
  eraseCommitted(upper, gathered.entries, log);
}
