// fim-layer create | add | commit | list (reference §12).
import { copyFileSync, existsSync, lstatSync, mkdirSync, readdirSync, renameSync, rmdirSync, rmSync, statSync, unlinkSync } from "node:fs";
import { resolve } from "node:path";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write, type Logger } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { appendLayer } from "./append.ts";
import { discoverLayers, identify } from "./discover.ts";
import { bytePath, gather } from "./gather.ts";

export { discoverLayers, type Layer } from "./discover.ts";

const NAME = "layer";
const DEFAULT_FORMAT = "erofs";
const MAX_LAYER = 999;

/** FIM_COMPRESSION_LEVEL: an integer clamped to 0..9, 7 when absent or not a number. */
export function compressionLevel(log: Logger): number {
  const text = process.env.FIM_COMPRESSION_LEVEL;
  if (text === undefined) log.debug("Could not read variable 'FIM_COMPRESSION_LEVEL'");
  const level = text !== undefined && /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : 7;
  return Math.max(0, Math.min(9, level));
}

async function createLayer(runtime: Runtime, log: Logger, source: string, output: string): Promise<{ entries: string[] }> {
  log.info("Gathering files to compress...");
  let info;
  try {
    info = statSync(source);
  } catch {
    throw new FimError(`Source directory '${source}' does not exist`);
  }
  if (!info.isDirectory()) throw new FimError(`Source '${source}' is not a directory`);
  const gathered = gather(source, log);
  const format = runtime.layerFormats.get(DEFAULT_FORMAT) ?? [...runtime.layerFormats.values()][0];
  if (!format) throw new FimError("No layer format plugin is compiled into this image");
  const level = compressionLevel(log);
  log.info(`Compression level: '${level}'`);
  log.info(`Compress filesystem to '${output}'`);
  // Built beside the destination and renamed: a failed or killed build leaves nothing behind.
  const temporary = `${output}.${process.pid}.tmp`;
  try {
    await format.create({ source, output: temporary, level, exclude: gathered.exclude, bytes: gathered.bytes });
    renameSync(temporary, output);
  } finally {
    rmSync(temporary, { force: true });
  }
  log.info("Filesystem created without errors");
  return gathered;
}

/** Refuses a file that is not a complete layer of a known format. */
function checkLayerFile(runtime: Runtime, file: string): void {
  let size: number;
  try {
    const info = statSync(file);
    if (!info.isFile()) throw new Error("not a regular file");
    size = info.size;
  } catch (error) {
    throw new FimError(`Failed to open input file '${file}': ${(error as Error).message}`);
  }
  const format = identify(runtime, { path: file, offset: 0, size });
  if (typeof format === "string") throw new FimError(`'${file}' is not a valid layer: ${format}`);
}

/** Removes what a commit captured from the upper directory, children before parents. */
function eraseCommitted(upper: string, entries: string[], log: Logger): void {
  for (const entry of [...entries].reverse()) {
    const path = bytePath(upper, entry);
    try {
      const info = lstatSync(path, { throwIfNoEntry: false });
      if (!info) continue;
      if (!info.isDirectory()) unlinkSync(path);
      else if (readdirSync(path).length === 0) rmdirSync(path);
    } catch (error) {
      log.warn(`Could not remove file ${path.toString()}: ${(error as Error).message}`);
    }
  }
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

export const layerPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-layer", {
        name: "fim-layer",
        summary: "Manage the layers of the current FlatImage",
        help: [
          { usage: "fim-layer <create> <in-dir> <out-file>", args: [["create", "Creates a layer file from a directory"], ["in-dir", "Directory to compress"], ["out-file", "Layer file to write"]] },
          { usage: "fim-layer <add> <in-file>", args: [["add", "Appends a layer file to the image"], ["in-file", "Layer file"]] },
          {
            usage: "fim-layer <commit> <binary|layer|file> [path]",
            args: [
              ["commit", "Compresses the changes made in the container into a new layer"],
              ["binary", "Appends the new layer to the image"],
              ["layer", "Saves it as the next layer-NNN.layer in the data directory's layers/"],
              ["file", "Saves it to the given path"],
            ],
            notes: ["FIM_COMPRESSION_LEVEL (0-9, default 7) sets the compression level"],
          },
          { usage: "fim-layer <list>", args: [["list", "Lists the layers in mount order: index:offset:size:path"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-layer' (create,add,commit,list)", { level: "C" });
          const op = parseWord(opWord, ["create", "add", "commit", "list"] as const, "Invalid layer operation");
          if (op === "NONE") throw new FimError("Invalid layer operation", { level: "C" });
          if (op === "add") {
            if (rest.length !== 1) throw new FimError("add requires exactly one argument (/path/to/file.layer)", { level: "C" });
            const file = resolve(rest[0]!);
            return () =>
              withContext("Failed to add layer", () => {
                checkLayerFile(runtime, file);
                appendLayer(runtime.image, file);
                log.info(`Included novel layer from file '${file}'`);
              });
          }
          if (op === "create") {
            if (rest.length !== 2) throw new FimError("create requires exactly two arguments (/path/to/dir /path/to/file.layer)", { level: "C" });
            const [source, output] = rest.map((path) => resolve(path)) as [string, string];
            return () =>
              withContext("Failed to create layer", async () => {
                await createLayer(runtime, log, source, output);
              });
          }
          if (op === "list") {
            rejectTrailing("fim-layer list", rest);
            return () =>
              withContext("Failed to list layers", async () => {
                const layers = await discoverLayers(runtime, log);
                write(1, layers.map((layer, index) => `${index}:${layer.offset}:${layer.size}:${layer.path}\n`).join(""));
              });
          }
          const [modeWord, ...modeArgs] = rest;
          if (modeWord === undefined) throw new FimError("Missing op for 'commit' (binary,layer,file)", { level: "C" });
          const mode = parseWord(modeWord, ["binary", "layer", "file"] as const, "Invalid commit operation");
          if (mode === "NONE") throw new FimError("Invalid commit operation", { level: "C" });
          let destination: string | undefined;
          if (mode === "file") {
            if (modeArgs.length === 0) throw new FimError("Missing path for 'file' operation", { level: "C" });
            destination = resolve(modeArgs.shift()!);
          }
          rejectTrailing("fim-layer commit", modeArgs);
          return () =>
            withContext("Failed to commit layer", async () => {
              const { upper, tmp, layers } = runtime.paths;
              mkdirSync(upper, { recursive: true });
              mkdirSync(tmp, { recursive: true });
              if (readdirSync(upper).length === 0) throw new FimError(`Nothing to commit: '${upper}' is empty`);
              if (destination && existsSync(destination)) throw new FimError("Destination file already exists");
              const staged = `${tmp}/layer.tmp`;
              const { entries } = await createLayer(runtime, log, upper, staged);
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
              eraseCommitted(upper, entries, log);
            });
        },
      }),
    );
  },
};

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
