// Writes an image file from its parts (layout in core/image.ts). The result appears under
// its final name only when complete: it is written next to it and renamed.
import { chmodSync, closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import * as v from "valibot";
import { BOOT_TABLE_MAGIC, HEADER_PREFIX, headerBytes, headerSchema, MAGIC, RESERVED_SIZE, type BootPart, type Header } from "../core/image.ts";
import { compress, compressInFrames } from "./compress.ts";

export interface License {
  type: string;
  url: string;
}

export interface Provenance {
  version: string;
  source: string;
  licenses: License[];
}

export interface ToolInput extends Provenance {
  name: string;
  path: string;
}

/** A file of the runtime the stub extracts: the launcher, the loader, a library. */
export interface BootInput {
  /** Where it goes in the build's runtime directory, e.g. "lib/libc.so.6". */
  path: string;
  file: string;
  mode: number;
  /** Provenance for `fim-version deps` (its name there is the file name). */
  provenance: Provenance;
}

export interface AssembleOptions {
  /** The boot stub (fim_stub), the image's ELF head. */
  stub: string;
  stubProvenance: Provenance;
  /** The launcher (Bun-compiled), the glibc loader and the libraries, as `boot` parts. */
  boot: BootInput[];
  loader: string;
  launcher: string;
  library: string;
  cpuLevel: number;
  output: string;
  tools: ToolInput[];
  layers: string[];
  metadata: Pick<Header, "version" | "commit" | "timestamp" | "distribution">;
  /** zstd level of the launcher, loader, libraries and tools. */
  level: number;
  /** Commands that declare themselves brief (the stub tunes the engine for them). */
  briefCommands: string[];
  /** Bytes written into the reserved space at build time (e.g. the preset remote), by offset in it. */
  reserved?: { offset: number; data: Buffer }[];
  progress: (text: string) => void;
}

const CHUNK = 8 * 1024 * 1024;
const TABLE_HEAD = 256;
const TABLE_ENTRY = 128;
/** The stub's room for the brief commands' names (BRIEF_MAX in fim_stub.c). */
const BRIEF_MAX = 4096;

/** The names, each ended by a NUL, as the stub reads them. */
function briefNames(names: string[]): Buffer {
  // The stub compares bytes: any name without NUL or blanks goes (dispatch takes any `fim-` word).
  for (const name of names) if (!/^[\x21-\x7e]+$/.test(name)) throw new Error(`command name '${name}' cannot go into the boot table (printable ASCII only)`);
  const bytes = Buffer.from(names.map((name) => `${name}\0`).join(""), "latin1");
  if (bytes.length > BRIEF_MAX) throw new Error(`the brief commands' names take ${bytes.length} bytes; the stub reads at most ${BRIEF_MAX}`);
  return bytes;
}

function elfEnd(bytes: Buffer): number {
  return Number(bytes.readBigUInt64LE(0x28)) + bytes.readUInt16LE(0x3a) * bytes.readUInt16LE(0x3c);
}

/**
 * Where the launcher's writable segment starts: what comes before it (code, read-only data)
 * is the Bun runtime, the same for every build with one Bun version, so it is compressed as a
 * frame of its own and cached; the program follows in the data segment.
 */
function runtimeCuts(bytes: Buffer): number[] {
  if (bytes.length < 64 || bytes.readUInt32BE(0) !== 0x7f454c46) return [];
  const phoff = Number(bytes.readBigUInt64LE(0x20));
  const phentsize = bytes.readUInt16LE(0x36);
  for (let i = 0; i < bytes.readUInt16LE(0x38); i++) {
    const at = phoff + i * phentsize;
    const type = bytes.readUInt32LE(at);
    const flags = bytes.readUInt32LE(at + 4);
    if (type === 1 && flags & 2) return [4096, Number(bytes.readBigUInt64LE(at + 8)) & ~4095];
  }
  return [4096];
}

const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

/** Copies a whole file into `fd` at `position`; returns the bytes written. */
function appendFile(fd: number, path: string, position: number): number {
  const input = openSync(path, "r");
  const buffer = Buffer.alloc(CHUNK);
  let total = 0;
  try {
    for (;;) {
      const n = readSync(input, buffer, 0, CHUNK, null);
      if (n === 0) break;
      let done = 0;
      while (done < n) done += writeSync(fd, buffer, done, n - done, position + total + done);
      total += n;
    }
  } finally {
    closeSync(input);
  }
  return total;
}

function field(table: Buffer, at: number, size: number, text: string): void {
  const bytes = Buffer.from(text, "latin1");
  if (bytes.length >= size || !/^[A-Za-z0-9_.+\/-]+$/.test(text)) throw new Error(`boot table: '${text}' does not fit its ${size}-byte field`);
  bytes.copy(table, at);
}

/** The stub's binary digest of the header (layout in toolset/src/fim_stub.c). */
function bootTable(header: Omit<Header, "boot"> & { boot: Omit<Header["boot"], "table"> }, modes: Map<string, number>, brief: Buffer): Buffer {
  const { parts } = header.boot;
  const table = Buffer.alloc(TABLE_HEAD + TABLE_ENTRY * parts.length + brief.length);
  BOOT_TABLE_MAGIC.copy(table, 0);
  table.writeUInt32LE(table.length, 8);
  table.writeUInt32LE(parts.length, 12);
  table.writeBigUInt64LE(BigInt(header.reserved), 16);
  table.writeUInt32LE(header.boot.cpuLevel, 24);
  table.writeUInt32LE(brief.length, 28);
  field(table, 32, 64, header.buildId);
  field(table, 96, 64, header.boot.loader);
  field(table, 160, 64, header.boot.launcher);
  field(table, 224, 32, header.boot.library);
  parts.forEach((part, i) => {
    const at = TABLE_HEAD + i * TABLE_ENTRY;
    field(table, at, 64, part.path);
    table.writeBigUInt64LE(BigInt(part.offset), at + 64);
    table.writeBigUInt64LE(BigInt(part.size), at + 72);
    table.writeBigUInt64LE(BigInt(part.rawSize), at + 80);
    Buffer.from(part.storedSha256, "hex").copy(table, at + 88);
    table.writeUInt32LE(modes.get(part.path)!, at + 120);
  });
  brief.copy(table, TABLE_HEAD + TABLE_ENTRY * parts.length);
  return table;
}

export async function assembleImage(options: AssembleOptions): Promise<number> {
  const stubBytes = readFileSync(options.stub);
  const end = elfEnd(stubBytes);
  if (end !== stubBytes.length) throw new Error(`stub ELF end ${end} != file size ${stubBytes.length}`);
  const stubSha = sha256(stubBytes);
  MAGIC.copy(stubBytes, 8);

  options.progress(`compressing the launcher, loader, libraries and ${options.tools.length} tools (zstd -${options.level})`);
  const boot = options.boot.map((input) => {
    const raw = readFileSync(input.file);
    const stored = input.path === options.launcher ? compressInFrames(raw, runtimeCuts(raw), options.level) : compress(raw, options.level);
    return { input, raw, stored, sha256: sha256(raw), storedSha256: sha256(stored) };
  });
  const tools = options.tools.map((input) => {
    const raw = readFileSync(input.path);
    return { input, raw, stored: compress(raw, options.level), sha256: sha256(raw) };
  });
  // Everything that runs is in the build id: a different launcher, library or tool never
  // reuses another build's extracted files.
  const buildHash = new Bun.CryptoHasher("sha256").update(stubSha);
  for (const part of [...boot, ...tools]) buildHash.update(part.sha256);
  const buildId = `${options.metadata.commit}_${options.metadata.timestamp}_${buildHash.digest("hex").slice(0, 12)}`;

  const provenance: Record<string, Provenance> = { fim_stub: options.stubProvenance };
  for (const { input } of boot) provenance[input.path.slice(input.path.indexOf("/") + 1)] = input.provenance;
  for (const { input } of tools) provenance[input.name] = { version: input.version, source: input.source, licenses: input.licenses };
  const deps = Buffer.from(JSON.stringify(provenance));
  const modes = new Map(options.boot.map((input) => [input.path, input.mode]));
  const brief = briefNames(options.briefCommands);

  // Offsets depend on the header's length, which depends on the offsets: iterate to a fixed point.
  let headerLength = 0;
  let header: Header | undefined;
  let json = "";
  for (let round = 0; round < 8; round++) {
    const tableOffset = end + HEADER_PREFIX + headerLength;
    const tableSize = TABLE_HEAD + TABLE_ENTRY * boot.length + brief.length;
    const depsOffset = tableOffset + tableSize;
    let offset = depsOffset + deps.length;
    const parts: BootPart[] = boot.map((part) => {
      const record = { path: part.input.path, offset, size: part.stored.length, rawSize: part.raw.length, sha256: part.sha256, storedSha256: part.storedSha256 };
      offset += part.stored.length;
      return record;
    });
    const toolRecords = tools.map((tool) => {
      const record = { name: tool.input.name, offset, size: tool.stored.length, rawSize: tool.raw.length, sha256: tool.sha256 };
      offset += tool.stored.length;
      return record;
    });
    header = {
      format: 3,
      ...options.metadata,
      buildId,
      reserved: offset,
      stub: { size: stubBytes.length, sha256: stubSha },
      boot: { table: { offset: tableOffset, size: tableSize }, loader: options.loader, launcher: options.launcher, library: options.library, cpuLevel: options.cpuLevel, parts },
      deps: { offset: depsOffset, size: deps.length },
      tools: toolRecords,
    };
    json = JSON.stringify(header);
    if (Buffer.byteLength(json) === headerLength) break;
    headerLength = Buffer.byteLength(json);
  }
  if (!header) throw new Error("unreachable");
  // A launcher takes an intact header as it is: only one its schema accepts is written.
  const checked = v.safeParse(headerSchema(), header);
  if (!checked.success) throw new Error(`the image header does not fit its schema (${checked.issues[0].path?.map((item) => String(item.key)).join(".")}: ${checked.issues[0].message})`);
  const table = bootTable(header, modes, brief);

  const temporary = `${options.output}.${process.pid}.tmp`;
  const fd = openSync(temporary, "w", 0o755);
  try {
    writeSync(fd, stubBytes, 0, stubBytes.length, 0);
    const head = Buffer.concat([headerBytes(json), table, deps]);
    writeSync(fd, head, 0, head.length, end);
    boot.forEach((part, i) => writeSync(fd, part.stored, 0, part.stored.length, header.boot.parts[i]!.offset));
    tools.forEach((tool, i) => writeSync(fd, tool.stored, 0, tool.stored.length, header.tools[i]!.offset));
    const reserved = Buffer.alloc(RESERVED_SIZE);
    for (const { offset, data } of options.reserved ?? []) data.copy(reserved, offset);
    writeSync(fd, reserved, 0, RESERVED_SIZE, header.reserved);
    let position = header.reserved + RESERVED_SIZE;
    for (const layer of options.layers) {
      options.progress(`appending layer ${layer}`);
      const size = statSync(layer).size;
      const word = Buffer.alloc(8);
      word.writeBigUInt64LE(BigInt(size));
      writeSync(fd, word, 0, 8, position);
      const written = appendFile(fd, layer, position + 8);
      if (written !== size) throw new Error(`layer '${layer}' changed while it was being appended`);
      position += 8 + size;
    }
    fsyncSync(fd);
  } catch (error) {
    closeSync(fd);
    rmSync(temporary, { force: true });
    throw error;
  }
  closeSync(fd);
  chmodSync(temporary, 0o755);
  renameSync(temporary, options.output);
  return statSync(options.output).size;
}
