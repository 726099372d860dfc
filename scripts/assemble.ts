// Writes an image file from its parts (layout in core/image.ts). The result appears under
// its final name only when complete: it is written next to it and renamed.
import { chmodSync, closeSync, fsyncSync, openSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { HEADER_MAGIC, MAGIC, RESERVED_SIZE, type Header } from "../core/image.ts";

export interface ToolInput {
  name: string;
  path: string;
  version: string;
  source: string;
  licenses: { type: string; url: string }[];
}

export interface AssembleOptions {
  launcher: string;
  output: string;
  tools: ToolInput[];
  layers: string[];
  metadata: Pick<Header, "version" | "commit" | "timestamp" | "distribution">;
  /** Bytes written into the reserved space at build time (e.g. the preset remote), by offset in it. */
  reserved?: { offset: number; data: Buffer }[];
  progress: (text: string) => void;
}

const CHUNK = 8 * 1024 * 1024;

function elfEnd(bytes: Buffer): number {
  return Number(bytes.readBigUInt64LE(0x28)) + bytes.readUInt16LE(0x3a) * bytes.readUInt16LE(0x3c);
}

/** Copies a whole file into `fd` at `position`, hashing it on the way; returns [bytes, sha256]. */
function appendFile(fd: number, path: string, position: number): [number, string] {
  const hash = new Bun.CryptoHasher("sha256");
  const input = openSync(path, "r");
  const buffer = Buffer.alloc(CHUNK);
  let total = 0;
  try {
    for (;;) {
      const n = readSync(input, buffer, 0, CHUNK, null);
      if (n === 0) break;
      const chunk = buffer.subarray(0, n);
      hash.update(chunk);
      let done = 0;
      while (done < n) done += writeSync(fd, chunk, done, n - done, position + total + done);
      total += n;
    }
  } finally {
    closeSync(input);
  }
  return [total, hash.digest("hex")];
}

async function sha256(path: string): Promise<string> {
  const hash = new Bun.CryptoHasher("sha256");
  for await (const chunk of Bun.file(path).stream()) hash.update(chunk);
  return hash.digest("hex");
}

export async function assembleImage(options: AssembleOptions): Promise<number> {
  const launcherBytes = Buffer.from(await Bun.file(options.launcher).arrayBuffer());
  const end = elfEnd(launcherBytes);
  if (end !== launcherBytes.length) throw new Error(`launcher ELF end ${end} != file size ${launcherBytes.length}`);
  MAGIC.copy(launcherBytes, 8);

  const toolSizes = options.tools.map((tool) => statSync(tool.path).size);
  const toolHashes = await Promise.all(options.tools.map((tool) => sha256(tool.path)));
  const buildHash = new Bun.CryptoHasher("sha256").update(launcherBytes).update(toolHashes.join(",")).digest("hex");
  const buildId = `${options.metadata.commit}_${options.metadata.timestamp}_${buildHash.slice(0, 12)}`;

  const deps = Buffer.from(
    JSON.stringify(Object.fromEntries(options.tools.map((tool) => [tool.name, { version: tool.version, source: tool.source, licenses: tool.licenses }]))),
  );

  // Offsets depend on the header's length, which depends on the offsets: iterate to a fixed point.
  let headerLength = 0;
  let json = "";
  for (let round = 0; round < 8; round++) {
    const depsOffset = end + 12 + headerLength;
    let offset = depsOffset + deps.length;
    const tools = options.tools.map((tool, i) => {
      const record = { name: tool.name, offset, size: toolSizes[i]!, sha256: toolHashes[i]! };
      offset += toolSizes[i]!;
      return record;
    });
    const header: Header = { format: 1, ...options.metadata, buildId, reserved: offset, deps: { offset: depsOffset, size: deps.length }, tools };
    json = JSON.stringify(header);
    if (Buffer.byteLength(json) === headerLength) break;
    headerLength = Buffer.byteLength(json);
  }
  const header = JSON.parse(json) as Header;

  const temporary = `${options.output}.${process.pid}.tmp`;
  const fd = openSync(temporary, "w", 0o755);
  try {
    writeSync(fd, launcherBytes, 0, launcherBytes.length, 0);
    const prefix = Buffer.alloc(12);
    HEADER_MAGIC.copy(prefix);
    prefix.writeUInt32LE(headerLength, 8);
    writeSync(fd, Buffer.concat([prefix, Buffer.from(json), deps]), 0, 12 + headerLength + deps.length, end);
    header.tools.forEach((tool, i) => {
      const [written] = appendFile(fd, options.tools[i]!.path, tool.offset);
      if (written !== tool.size) throw new Error(`tool '${tool.name}' changed while it was being embedded`);
    });
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
      const [written] = appendFile(fd, layer, position + 8);
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
