// Layer discovery (reference §8.1), lowest first: layers appended to the image, then
// FIM_LAYERS (files, or directories of files sorted by path), then <data>/layers.
// Each layer's format is known by its own magic number, so mixed images work.
import { closeSync, openSync, readAt, readdirSync, statSync } from "../../lib/fs.ts";
import { embeddedLayers, type LayerRecord } from "../../core/image.ts";
import { FimError } from "../../core/errors.ts";
import { expandOrKeep } from "../../core/expand.ts";
import type { Logger } from "../../core/log.ts";
import { HEAD_SIZE, type LayerFormat } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";

export interface Layer extends LayerRecord {
  format: LayerFormat;
}

/** The format of a layer, or why it is not one. */
export function identify(runtime: Runtime, record: LayerRecord): LayerFormat | string {
  const fd = openSync(record.path, "r");
  let head: Buffer;
  try {
    head = readAt(fd, record.offset, Math.min(HEAD_SIZE, record.size));
  } finally {
    closeSync(fd);
  }
  const format = [...runtime.layerFormats.values()].find((candidate) => candidate.detect(head));
  if (!format) return "not a layer of a known format";
  return format.check(head, record.size) ?? format;
}

function fromFile(runtime: Runtime, path: string, log: Logger, layers: Layer[]): void {
  const record = { path, offset: 0, size: statSync(path).size };
  const format = identify(runtime, record);
  if (typeof format === "string") log.warn(`Skipping invalid layer '${path}': ${format}`);
  else layers.push({ ...record, format });
}

function fromDirectory(runtime: Runtime, dir: string, log: Logger, layers: Layer[]): void {
  const files = readdirSync(dir)
    .map((name) => `${dir}/${name}`)
    .filter((path) => statSync(path).isFile())
    .sort();
  for (const file of files) fromFile(runtime, file, log, layers);
}

export async function discoverLayers(runtime: Runtime, log: Logger): Promise<Layer[]> {
  const layers: Layer[] = [];
  const embedded = embeddedLayers(runtime.image, (message) => log.debug(message));
  for (const [index, record] of embedded.entries()) {
    const format = identify(runtime, record);
    // Part of the file: damage, not a file to skip (the guest would miss what it holds).
    if (typeof format === "string") throw new FimError(`The image '${runtime.image.path}' is damaged: layer ${index} at offset ${record.offset} (${record.size} bytes): ${format}`, { level: "C" });
    layers.push({ ...record, format });
  }
  const extra = process.env.FIM_LAYERS;
  const items = extra ? (await expandOrKeep(extra, log)).split(":") : [];
  for (const item of [...items, runtime.paths.layers]) {
    if (item === "") continue;
    let info;
    try {
      info = statSync(item);
    } catch {
      continue; // absent paths are ignored, as upstream
    }
    if (info.isDirectory()) fromDirectory(runtime, item, log, layers);
    else if (info.isFile()) fromFile(runtime, item, log, layers);
  }
  return layers;
}
