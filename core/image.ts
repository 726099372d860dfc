// The image file (reference §7.1, our layout):
//   [0, E)        the boot stub (static ELF, toolset/src/fim_stub.c); bytes 8..10 are the magic "FI\x01"
//   E             header: "FIMAGE\0\x03", u32 LE length N, the sha256 of the JSON (32 bytes), N bytes of
//                 JSON (build metadata, where each part is)
//   E+44+N        the boot table: the stub's binary digest of the header and the names of the brief
//                 commands (fim_stub.c, scripts/assemble.ts), then the tools' provenance (JSON), the
//                 boot parts (zstd: the launcher, the glibc loader and libraries) and the helper
//                 tools (zstd), back to back
//   RSV           reserved space, 4 MiB (slots of reference §7.2, see reserved.ts)
//   RSV+4MiB      layers: u64 LE size, then the layer bytes; repeated
import { closeFile, closeSync, fdatasyncSync, fstatSync, openForReading, openSync, readAt, sizeOf, statSync, writeSync } from "../lib/fs.ts";
import * as v from "valibot";
import { FimError } from "./errors.ts";
import { lazy } from "./lazy.ts";
import { flock, LOCK_EX } from "./libc.ts";

export const MAGIC = Buffer.from([0x46, 0x49, 0x01]); // "FI\x01" at bytes 8..10
export const HEADER_MAGIC = Buffer.from("FIMAGE\0\x03", "latin1");
export const BOOT_TABLE_MAGIC = Buffer.from("FIMBOOT\x02", "latin1");
export const RESERVED_SIZE = 4 * 1024 * 1024;
export const HEADER_PREFIX = 44;
const MAX_HEADER = 1024 * 1024;

// The header's schema is the build's check of what it writes, and says what is wrong with a
// damaged header; an intact one (its sha256 matches) is taken as it is, so a start never
// builds the schemas.
const schemas = lazy(() => {
  const Extent = { offset: v.pipe(v.number(), v.integer(), v.minValue(0)), size: v.pipe(v.number(), v.integer(), v.minValue(0)) };
  const Sha256 = v.pipe(v.string(), v.regex(/^[0-9a-f]{64}$/));
  /** A zstd-compressed part: `size` bytes stored at `offset`, `rawSize` bytes with `sha256` once decompressed. */
  const Stored = { ...Extent, rawSize: v.pipe(v.number(), v.integer(), v.minValue(0)), sha256: Sha256 };
  const Tool = v.object({ name: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.+-]+$/)), ...Stored });
  /** A file the stub extracts into the build's runtime directory (`path` is relative to it). */
  const BootPart = v.object({ path: v.pipe(v.string(), v.regex(/^(bin|lib)\/[A-Za-z0-9_.+-]+$/)), ...Stored, storedSha256: Sha256 });
  const Header = v.object({
    format: v.literal(3),
    version: v.string(),
    commit: v.string(),
    timestamp: v.pipe(v.string(), v.regex(/^\d{14}$/)),
    distribution: v.pipe(v.string(), v.regex(/^[A-Z0-9_]+$/)),
    buildId: v.pipe(v.string(), v.regex(/^[A-Za-z0-9_.-]+$/)),
    reserved: v.pipe(v.number(), v.integer(), v.minValue(0), v.maxValue(2 ** 32 - 1)),
    stub: v.object({ size: v.pipe(v.number(), v.integer(), v.minValue(64)), sha256: Sha256 }),
    boot: v.object({
      table: v.object(Extent),
      /** Paths in the build's runtime directory: the glibc loader, the launcher, the libraries' directory. */
      loader: v.string(),
      launcher: v.string(),
      library: v.string(),
      /** The x86-64 micro-architecture level the launcher needs (checked by the stub). */
      cpuLevel: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(4)),
      parts: v.array(BootPart),
    }),
    deps: v.object(Extent),
    tools: v.array(Tool),
  });
  /** Where each tool came from (fim-version deps); kept out of the header, read on demand. */
  const Deps = v.record(v.string(), v.object({ version: v.string(), source: v.string(), licenses: v.array(v.object({ type: v.string(), url: v.string() })) }));
  return { Header, Tool, BootPart, Deps };
});
type Schemas = ReturnType<typeof schemas>;

export const headerSchema = () => schemas().Header;
export type Header = v.InferOutput<Schemas["Header"]>;
export type ToolRecord = v.InferOutput<Schemas["Tool"]>;
export type BootPart = v.InferOutput<Schemas["BootPart"]>;
export type Deps = v.InferOutput<Schemas["Deps"]>;

const sha256 = (bytes: Buffer) => new Bun.CryptoHasher("sha256").update(bytes).digest();

/** The header as it is stored: magic, length, the JSON's digest, the JSON. */
export function headerBytes(json: string): Buffer {
  const text = Buffer.from(json);
  const prefix = Buffer.alloc(HEADER_PREFIX);
  HEADER_MAGIC.copy(prefix);
  prefix.writeUInt32LE(text.length, 8);
  sha256(text).copy(prefix, 12);
  return Buffer.concat([prefix, text]);
}

export function broken(message: string): FimError {
  return new FimError(message, { level: "E" });
}

export function pwriteAll(fd: number, data: Buffer, position: number): void {
  let done = 0;
  while (done < data.length) done += writeSync(fd, data, done, data.length - done, position + done);
}

const ETXTBSY_WAIT_MS = 10_000;

function openForWrite(path: string): number {
  const deadline = Date.now() + ETXTBSY_WAIT_MS;
  for (;;) {
    try {
      return openSync(path, "r+");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // Another process may be in its first milliseconds, still executing the image file.
      if (code === "ETXTBSY" && Date.now() < deadline) {
        Bun.sleepSync(10);
        continue;
      }
      if (code === "ETXTBSY") throw new FimError(`Failed to open input file: '${path}' is being executed by another process`);
      throw new FimError(`Failed to open input file: ${(error as Error).message}`);
    }
  }
}

/**
 * Opens the image and takes an exclusive flock on it: writers of the reserved space and of
 * layers are serialised. `fim-layer remove/squash` replace the file (a new one renamed over
 * it) while holding the lock, so a lock granted on a file that is no longer the image is
 * dropped and taken again on the current one. Returns the locked descriptor (read-only).
 */
export function lockImage(path: string): number {
  for (;;) {
    const fd = openSync(path, "r");
    try {
      flock(fd, LOCK_EX);
      const current = statSync(path, { throwIfNoEntry: false });
      const locked = fstatSync(fd);
      if (current && current.ino === locked.ino && current.dev === locked.dev) return fd;
    } catch (error) {
      closeSync(fd);
      throw error;
    }
    closeSync(fd);
  }
}

/** Runs `write` with a descriptor open for writing on the image, under the image lock. */
export function withWriteLock<T>(image: { path: string }, write: (fd: number) => T): T {
  const lockFd = lockImage(image.path);
  try {
    const fd = openForWrite(image.path);
    try {
      return write(fd);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(lockFd); // releases the flock
  }
}

/** Writes of a few bytes to an image under its lock, each through a descriptor opened only for it. */
export interface ShortWrites {
  /** Read-only: for reads (the lock's descriptor). */
  fd: number;
  write(data: Buffer, position: number): void;
  /** Makes what was written durable (through the read-only descriptor: Linux syncs the file). */
  sync(): void;
}

/**
 * Like withWriteLock, for writes of a few bytes: the image is open for writing only while
 * each one is made (microseconds), not across the syncs between them (milliseconds), since
 * nobody can start the image while it is open for writing (ETXTBSY on exec): a start that
 * meets a configuration write is then rare, not likely.
 */
export function withShortWrites<T>(image: { path: string }, update: (io: ShortWrites) => T): T {
  const lockFd = openSync(image.path, "r");
  try {
    flock(lockFd, LOCK_EX);
    return update({
      fd: lockFd,
      write(data, position) {
        const fd = openForWrite(image.path);
        try {
          pwriteAll(fd, data, position);
        } finally {
          closeSync(fd);
        }
      },
      sync: () => fdatasyncSync(lockFd),
    });
  } finally {
    closeSync(lockFd); // releases the flock
  }
}

/** End of the ELF part: the section header table is the last thing in the stub (and in a Bun executable). */
export function elfEnd(fd: number, path: string): number {
  const ident = readAt(fd, 0, 64);
  if (ident.length < 64 || ident.readUInt32BE(0) !== 0x7f454c46) throw broken(`'${path}' is not an ELF executable`);
  if (ident[4] !== 2 || ident[5] !== 1) throw broken(`'${path}' is not a 64-bit little-endian ELF file`);
  const shoff = Number(ident.readBigUInt64LE(0x28));
  const shentsize = ident.readUInt16LE(0x3a);
  const shnum = ident.readUInt16LE(0x3c);
  return shoff + shentsize * shnum;
}

export function hasMagic(fd: number): boolean {
  return readAt(fd, 8, 3).equals(MAGIC);
}

/** A parsed image: where each part starts. Only the header and the reserved space are read. */
export class Image {
  private constructor(
    readonly path: string,
    readonly size: number,
    /** Bytes of the boot stub (the ELF part). */
    readonly stubSize: number,
    readonly header: Header,
  ) {}

  get reservedOffset(): number {
    return this.header.reserved;
  }

  get layersOffset(): number {
    return this.header.reserved + RESERVED_SIZE;
  }

  get distribution(): string {
    return this.header.distribution;
  }

  static open(path: string): Image {
    let fd: number;
    try {
      fd = openForReading(path);
    } catch (error) {
      throw broken(`Could not open image file '${path}': ${(error as Error).message}`);
    }
    try {
      return Image.read(fd, path);
    } finally {
      closeFile(fd);
    }
  }

  static read(fd: number, path: string): Image {
    const size = sizeOf(fd);
    const end = elfEnd(fd, path);
    if (!hasMagic(fd)) throw broken(`'${path}' is not a FlatImage (magic bytes FI\\x01 missing at offset 8)`);
    if (end >= size) throw broken(`'${path}' is a bare launcher: it carries no image header, tools or reserved space`);
    const prefix = readAt(fd, end, HEADER_PREFIX);
    if (prefix.length === HEADER_PREFIX && prefix.subarray(0, 7).equals(HEADER_MAGIC.subarray(0, 7)) && prefix[7]! < HEADER_MAGIC[7]!) {
      throw broken(`'${path}' was built by an older version of this runtime (image format ${prefix[7]}): build it again`);
    }
    if (prefix.length < HEADER_PREFIX || !prefix.subarray(0, 8).equals(HEADER_MAGIC)) {
      throw broken(`'${path}' has no image header after its launcher (offset ${end}): not an image, or a damaged one`);
    }
    const length = prefix.readUInt32LE(8);
    if (length > MAX_HEADER || end + HEADER_PREFIX + length > size) {
      throw broken(`'${path}' is truncated: its image header claims ${length} bytes`);
    }
    // The JSON the build wrote, byte for byte, was valid: then it is taken as it is. Checking
    // it against the schema cost ~0.3 ms of every start; that check now only says what is wrong.
    const text = readAt(fd, end + HEADER_PREFIX, length);
    const intact = sha256(text).equals(prefix.subarray(12, HEADER_PREFIX));
    let json: unknown;
    try {
      json = JSON.parse(text.toString("utf8"));
    } catch {
      throw broken(`'${path}' has a corrupt image header (invalid JSON)`);
    }
    if (!intact) {
      const parsed = v.safeParse(headerSchema(), json);
      if (!parsed.success) {
        const issue = parsed.issues[0];
        const where = issue.path?.map((item) => String(item.key)).join(".") ?? "header";
        throw broken(`'${path}' has a corrupt image header (${where}: ${issue.message})`);
      }
      throw broken(`'${path}' has a corrupt image header (it does not match its sha256)`);
    }
    const header = json as Header;
    const toolsStart = end + HEADER_PREFIX + length;
    const parts = [{ name: "boot table", ...header.boot.table }, { name: "deps", ...header.deps }, ...header.boot.parts.map((part) => ({ name: part.path, ...part })), ...header.tools];
    for (const part of parts) {
      if (part.offset < toolsStart || part.offset + part.size > header.reserved) {
        throw broken(`'${path}' has a corrupt image header ('${part.name}' lies outside the tools area)`);
      }
    }
    if (header.reserved < toolsStart || header.reserved + RESERVED_SIZE > size) {
      throw broken(`'${path}' is truncated: the reserved space (offset ${header.reserved}, 4 MiB) extends past the end of the file (${size} bytes)`);
    }
    return new Image(path, size, end, header);
  }
}

/** The provenance of the embedded tools. */
export function readDeps(image: Image): Deps {
  const fd = openForReading(image.path);
  try {
    const text = readAt(fd, image.header.deps.offset, image.header.deps.size).toString("utf8");
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw broken(`'${image.path}' has corrupt tool metadata (invalid JSON)`);
    }
    const parsed = v.safeParse(schemas().Deps, json);
    if (!parsed.success) throw broken(`'${image.path}' has corrupt tool metadata (${parsed.issues[0].message})`);
    return parsed.output;
  } finally {
    closeFile(fd);
  }
}

export interface LayerRecord {
  /** File holding the layer. */
  path: string;
  /** Position of the layer bytes in that file (after the size word for embedded layers). */
  offset: number;
  size: number;
}

/**
 * Walks the layers appended after the reserved space. A zero size word ends them: it is what
 * an interrupted append leaves (`note` says so). A layer that runs past the end of the file,
 * or a size word cut short, means the file is damaged (a truncated copy or download): that
 * is an error naming the layer, never a layer silently dropped (the guest would start with
 * whatever the other layers hold, or an empty root).
 */
export function embeddedLayers(image: Image, note: (message: string) => void): LayerRecord[] {
  const fd = openForReading(image.path);
  // C level: a run shows only those, and a run is where this is found.
  const damaged = (what: string) => new FimError(`The image '${image.path}' is damaged (truncated?): ${what}`, { level: "C" });
  try {
    // The size of the file read now: it may have been replaced since `image` was parsed
    // (fim-layer remove/squash); what comes before the layers is the same in both.
    const total = sizeOf(fd);
    const layers: LayerRecord[] = [];
    let position = image.layersOffset;
    while (position < total) {
      if (position + 8 > total) throw damaged(`the size of layer ${layers.length} at offset ${position} is cut short (${total - position} of 8 bytes)`);
      const size = Number(readAt(fd, position, 8).readBigUInt64LE(0));
      if (size === 0) {
        note(`Layers end at offset ${position}: ${total - position} bytes of an interrupted append follow`);
        break;
      }
      if (position + 8 + size > total) {
        throw damaged(`layer ${layers.length} at offset ${position} needs ${size} bytes, but the file ends after ${total - position - 8}`);
      }
      layers.push({ path: image.path, offset: position + 8, size });
      position += 8 + size;
    }
    return layers;
  } finally {
    closeFile(fd);
  }
}
