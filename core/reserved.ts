// The 4 MiB reserved space (reference §7.2): fixed slots, byte-compatible with upstream.
// Writes are serialised with flock on the image and made atomic with a journal kept in
// the unused tail of the reserved space: record, apply, clear. A reader that finds a
// complete record sees its content, so a write killed half-way is never observed.
import { closeFile, openForReading, readAt } from "../lib/fs.ts";
import * as v from "valibot";
import { FimError } from "./errors.ts";
import { Image, RESERVED_SIZE, withShortWrites, type ShortWrites } from "./image.ts";
import { dumpJson } from "./json.ts";

export interface Slot {
  name: string;
  offset: number;
  size: number;
}

const slot = (name: string, offset: number, size: number): Slot => ({ name, offset, size });

export const SLOTS = {
  permissions: slot("permissions", 0, 8),
  notify: slot("notify", 8, 1),
  overlay: slot("overlay", 9, 1),
  casefold: slot("casefold", 10, 1),
  desktop: slot("desktop", 11, 4096),
  boot: slot("boot", 4107, 8192),
  icon: slot("icon", 12299, 1048576),
  environment: slot("environment", 1060875, 1048576),
  bindings: slot("bindings", 2109451, 1048576),
  remote: slot("remote", 3158027, 4096),
  unshare: slot("unshare", 3162123, 2),
  // Slots of our own are taken from the far end, downwards: upstream's offsets and the
  // journal's stay where they are, and the journal keeps the space in between.
  portal: slot("portal", RESERVED_SIZE - 4096, 4096),
} as const;

const JOURNAL_OFFSET = 3162125;
const JOURNAL_END = SLOTS.portal.offset;
const JOURNAL_MAGIC = Buffer.from("FIMJRNL\x01", "latin1");
const JOURNAL_HEADER = 24; // magic, u32 slot offset, u32 slot size, u32 length, u32 crc
export const JOURNAL_CAPACITY = JOURNAL_END - JOURNAL_OFFSET - JOURNAL_HEADER;
const outsideJournal = (offset: number, size: number) => offset + size <= JOURNAL_OFFSET || (offset >= JOURNAL_END && offset + size <= RESERVED_SIZE);

interface PendingWrite {
  offset: number;
  size: number;
  data: Buffer;
}

function readJournal(fd: number, base: number): PendingWrite | undefined {
  const head = readAt(fd, base + JOURNAL_OFFSET, JOURNAL_HEADER);
  if (head.length < JOURNAL_HEADER || !head.subarray(0, 8).equals(JOURNAL_MAGIC)) return undefined;
  const offset = head.readUInt32LE(8);
  const size = head.readUInt32LE(12);
  const length = head.readUInt32LE(16);
  if (length > JOURNAL_CAPACITY || length > size || !outsideJournal(offset, size)) return undefined;
  const data = readAt(fd, base + JOURNAL_OFFSET + JOURNAL_HEADER, length);
  if (data.length !== length || (Bun.hash.crc32(data) ^ offset ^ size) >>> 0 !== head.readUInt32LE(20)) return undefined;
  return { offset, size, data };
}

/** Bytes of a slot as a reader should see them (a pending journal record wins). */
export function readSlot(image: Image, target: Slot): Buffer {
  const fd = openForReading(image.path);
  try {
    const pending = readJournal(fd, image.reservedOffset);
    const bytes = readAt(fd, image.reservedOffset + target.offset, target.size);
    if (bytes.length !== target.size) throw new FimError("Failed to read data from binary file");
    if (pending && pending.offset === target.offset) {
      bytes.fill(0);
      pending.data.copy(bytes);
    }
    return bytes;
  } finally {
    closeFile(fd);
  }
}

const TEXT_CHUNK = 16 * 1024;

/** Text of a NUL-terminated slot (up to the first NUL), read in chunks: slots are mostly tiny. */
export function readText(image: Image, target: Slot): string {
  const fd = openForReading(image.path);
  try {
    const pending = readJournal(fd, image.reservedOffset);
    if (pending && pending.offset === target.offset) return textOf(pending.data);
    const chunks: Buffer[] = [];
    for (let done = 0; done < target.size; ) {
      const chunk = readAt(fd, image.reservedOffset + target.offset + done, Math.min(TEXT_CHUNK, target.size - done));
      if (chunk.length === 0) throw new FimError("Failed to read data from binary file");
      const nul = chunk.indexOf(0);
      chunks.push(nul === -1 ? chunk : chunk.subarray(0, nul));
      if (nul !== -1) break;
      done += chunk.length;
    }
    return Buffer.concat(chunks).toString("utf8");
  } finally {
    closeFile(fd);
  }
}

function apply(io: ShortWrites, base: number, write: PendingWrite): void {
  const field = Buffer.alloc(write.size);
  write.data.copy(field);
  io.write(field, base + write.offset);
}

/**
 * Read-modify-write of one slot under the image lock. `update` gets the current bytes
 * and returns the new content (without padding); it must fit the slot.
 */
export function updateSlot(image: Image, target: Slot, update: (current: Buffer) => Buffer, tooLarge = "Not enough space to fit json data"): void {
  withShortWrites(image, (io) => {
    const base = image.reservedOffset;
    const leftover = readJournal(io.fd, base);
    if (leftover) {
      apply(io, base, leftover);
      io.sync();
    }
    const current = readAt(io.fd, base + target.offset, target.size);
    const data = update(current);
    if (data.length > target.size || data.length > JOURNAL_CAPACITY) throw new FimError(tooLarge);
    const head = Buffer.alloc(JOURNAL_HEADER);
    JOURNAL_MAGIC.copy(head);
    head.writeUInt32LE(target.offset, 8);
    head.writeUInt32LE(target.size, 12);
    head.writeUInt32LE(data.length, 16);
    head.writeUInt32LE((Bun.hash.crc32(data) ^ target.offset ^ target.size) >>> 0, 20);
    io.write(Buffer.concat([head, data]), base + JOURNAL_OFFSET);
    io.sync();
    apply(io, base, { offset: target.offset, size: target.size, data });
    io.sync();
    io.write(Buffer.alloc(8), base + JOURNAL_OFFSET);
  });
}

/** NUL-terminated JSON/text slots must leave room for the terminator. */
export function textBytes(text: string, target: Slot, tooLarge = "Not enough space to fit json data"): Buffer {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length >= target.size) throw new FimError(tooLarge);
  return bytes;
}

function textOf(bytes: Buffer): string {
  const nul = bytes.indexOf(0);
  return bytes.subarray(0, nul === -1 ? bytes.length : nul).toString("utf8");
}

function parseJsonText<T>(text: string, image: Image, target: Slot, schema: v.GenericSchema<unknown, T>): T | undefined {
  if (text === "") return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FimError(`Corrupt ${target.name} data in the reserved space of '${image.path}': invalid JSON`);
  }
  return validate(schema, value, `${target.name} data in the reserved space of '${image.path}'`);
}

/** Parses a JSON slot with `schema`; undefined when the slot is empty. Corrupt data is an error. */
export function readJson<T>(image: Image, target: Slot, schema: v.GenericSchema<unknown, T>): T | undefined {
  return parseJsonText(readText(image, target), image, target, schema);
}

/** Read-modify-write of a JSON slot under the image lock. */
export function updateJson<T>(
  image: Image,
  target: Slot,
  schema: v.GenericSchema<unknown, T>,
  change: (value: T | undefined) => unknown,
  tooLarge?: string,
): void {
  updateSlot(image, target, (current) => textBytes(dumpJson(change(parseJsonText(textOf(current), image, target, schema))), target, tooLarge), tooLarge);
}

/** Validates with valibot; the error names the first offending field. */
export function validate<T>(schema: v.GenericSchema<unknown, T>, value: unknown, what: string): T {
  const result = v.safeParse(schema, value);
  if (result.success) return result.output;
  const issue = result.issues[0];
  const where = issue.path?.map((item) => String(item.key)).join(".");
  throw new FimError(`Corrupt ${what}: ${where ? `${where}: ` : ""}${issue.message}`);
}

/** Rewrites a JSON slot in FlatImage's pretty format (reference §2.5). */
export function writeJson(image: Image, target: Slot, value: unknown, tooLarge?: string): void {
  updateSlot(image, target, () => textBytes(dumpJson(value), target, tooLarge), tooLarge);
}
