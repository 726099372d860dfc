// Managing layers after the fact: fim-layer list --long, remove, squash. Indices are those of
// fim-layer list (mount order). Layers embedded in the image are changed by rewriting the
// image (rewrite.ts); a layer in the data directory's layers/ is a file of its own.
import { mkdirSync, readdirSync, statSync, unlinkSync } from "../../lib/fs.ts";
import { dirname, resolve } from "../../lib/path.ts";
import { FimError } from "../../core/errors.ts";
import { write, type Logger } from "../../core/log.ts";
import type { Runtime } from "../../core/runtime.ts";
import { compress } from "./commit.ts";
import { discoverLayers, type Layer } from "./discover.ts";
import { gather } from "./gather.ts";
import { mergeLayers, openDirectories, removeTree } from "./merge.ts";
import { alive } from "../../core/proc.ts";
import { rewriteLayers, type Piece } from "./rewrite.ts";
import { human, summarize } from "./summary.ts";

type Origin = "image" | "data" | "FIM_LAYERS";

interface Listed {
  index: number;
  layer: Layer;
  origin: Origin;
}

function listLayers(runtime: Runtime, layers: Layer[]): Listed[] {
  const managed = resolve(runtime.paths.layers);
  return layers.map((layer, index) => ({
    index,
    layer,
    origin: layer.path === runtime.image.path ? "image" : resolve(dirname(layer.path)) === managed ? "data" : "FIM_LAYERS",
  }));
}

/** A layer index as fim-layer list shows it (checked when the command is parsed). */
export function parseIndex(word: string, what: string): number {
  if (!/^[0-9]+$/.test(word)) throw new FimError(`Invalid layer index '${word}' for '${what}': expected a number as fim-layer list shows`, { level: "C" });
  return Number(word);
}

function pick(listed: Listed[], index: number): Listed {
  const found = listed[index];
  if (!found) {
    const range = listed.length === 0 ? "it has none" : listed.length === 1 ? "it has only layer 0" : `it has layers 0 to ${listed.length - 1}`;
    throw new FimError(`No layer ${index}: ${range} (see fim-layer list)`);
  }
  return found;
}

function describe(item: Listed): string {
  return item.origin === "image" ? `layer ${item.index} (${human(item.layer.size)}, in the image)` : `layer ${item.index} ('${item.layer.path}')`;
}

export async function listLong(runtime: Runtime, log: Logger): Promise<void> {
  const listed = listLayers(runtime, await discoverLayers(runtime, log));
  const width = String(Math.max(0, listed.length - 1)).length;
  const out = listed.map(({ index, layer, origin }) => {
    let contents: string;
    try {
      const entries: Parameters<typeof summarize>[0] = [];
      if (!layer.format.walk) throw new Error(`the ${layer.format.name} format cannot list its contents`);
      layer.format.walk(layer, (entry) => entries.push(entry));
      contents = summarize(entries, runtime.bundle.packageEntry);
    } catch (error) {
      contents = `contents unknown: ${(error as Error).message}`;
    }
    const where = origin === "image" ? "image" : layer.path;
    return `${String(index).padStart(width)}  ${human(layer.size).padStart(9)}  ${where}  ${contents}\n`;
  });
  write(1, out.join(""));
}

export async function remove(runtime: Runtime, log: Logger, indices: number[]): Promise<void> {
  const layers = await discoverLayers(runtime, log);
  const listed = listLayers(runtime, layers);
  const chosen = [...new Set(indices)].map((index) => pick(listed, index));
  for (const item of chosen) {
    if (item.origin === "FIM_LAYERS") throw new FimError(`Layer ${item.index} ('${item.layer.path}') comes from FIM_LAYERS, not from the image: leave it out of that variable instead`);
    if (item.origin === "image" && item.index === 0) throw new FimError("Layer 0 is the image's root filesystem: it cannot be removed (fim-layer squash can merge layers into it)");
  }
  const fromImage = chosen.filter((item) => item.origin === "image");
  if (fromImage.length > 0) {
    const embedded = listed.filter((item) => item.origin === "image");
    const gone = new Set(fromImage.map((item) => item.index));
    const pieces: Piece[] = embedded.filter((item) => !gone.has(item.index)).map((item) => ({ record: item.layer }));
    const { before, after } = rewriteLayers(runtime.image, embedded.map((item) => item.layer), pieces, log);
    for (const item of fromImage) log.info(`Removed ${describe(item)}`);
    log.info(`The image is now ${human(after)} (was ${human(before)})`);
  }
  for (const item of chosen.filter((item) => item.origin === "data")) {
    unlinkSync(item.layer.path);
    log.info(`Removed ${describe(item)}`);
  }
}

export async function squash(runtime: Runtime, log: Logger, first: number, last: number): Promise<void> {
  const listed = listLayers(runtime, await discoverLayers(runtime, log));
  pick(listed, first);
  pick(listed, last);
  const range = listed.slice(first, last + 1);
  const outside = range.find((item) => item.origin !== "image");
  if (outside) throw new FimError(`Only layers embedded in the image can be squashed: layer ${outside.index} is '${outside.layer.path}'`);
  const missing = range.find((item) => !item.layer.format.extract);
  if (missing) throw new FimError(`Layer ${missing.index} is in the ${missing.layer.format.name} format, which cannot be unpacked`);

  const { tmp } = runtime.paths;
  mkdirSync(tmp, { recursive: true });
  for (const name of readdirSync(tmp)) {
    const match = /^squash-(\d+)$/.exec(name);
    if (match && !alive(Number(match[1]))) removeTree(`${tmp}/${name}`);
  }
  const staging = `${tmp}/squash-${process.pid}`;
  removeTree(staging);
  mkdirSync(staging, { mode: 0o700 });
  try {
    const dirs: string[] = [];
    for (const item of range) {
      const dir = `${staging}/${item.index}`;
      log.info(`Unpacking ${describe(item)}`);
      await item.layer.format.extract!(item.layer, dir);
      dirs.push(Buffer.from(dir).toString("latin1"));
    }
    log.info(`Merging layers ${first} to ${last}`);
    const below = new Set<string>();
    for (const item of listed.slice(0, first)) {
      if (!item.layer.format.walk) throw new FimError(`Layer ${item.index} is in the ${item.layer.format.name} format, which cannot list its contents`);
      item.layer.format.walk(item.layer, (entry) => {
        if (!(entry.type === "char" && entry.rdev === 0)) below.add(entry.path);
      });
    }
    const opened = openDirectories(dirs);
    const merged = mergeLayers(dirs, below);
    opened.restore(merged);
    const source = Buffer.from(merged, "latin1").toString();
    const output = `${staging}/squashed.layer`;
    await compress(runtime, log, source, output, gather(source, log, [], true));
    const size = statSync(output).size;
    const embedded = listed.filter((item) => item.origin === "image");
    const pieces: Piece[] = [
      ...embedded.slice(0, first).map((item) => ({ record: item.layer })),
      { file: output, size },
      ...embedded.slice(last + 1).map((item) => ({ record: item.layer })),
    ];
    const { before, after } = rewriteLayers(runtime.image, embedded.map((item) => item.layer), pieces, log);
    const was = range.reduce((sum, item) => sum + item.layer.size, 0);
    log.info(`Squashed layers ${first} to ${last} (${human(was)}) into layer ${first} (${human(size)})`);
    log.info(`The image is now ${human(after)} (was ${human(before)})`);
  } finally {
    removeTree(staging);
  }
}
