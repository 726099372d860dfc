import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import * as v from "valibot";
import { Image } from "../../core/image.ts";
import { JOURNAL_CAPACITY, readJson, readSlot, readText, SLOTS, updateJson, updateSlot } from "../../core/reserved.ts";
import { syntheticImage } from "../helpers/synthetic.ts";

const JOURNAL_OFFSET = 3162125;
const Env = v.record(v.string(), v.string());

/** A journal record exactly as a writer leaves it just before applying it. */
function journalRecord(slotOffset: number, slotSize: number, data: Buffer): Buffer {
  const head = Buffer.alloc(24);
  head.write("FIMJRNL\x01", 0, "latin1");
  head.writeUInt32LE(slotOffset, 8);
  head.writeUInt32LE(slotSize, 12);
  head.writeUInt32LE(data.length, 16);
  head.writeUInt32LE((Bun.hash.crc32(data) ^ slotOffset ^ slotSize) >>> 0, 20);
  return Buffer.concat([head, data]);
}

function poke(path: string, position: number, data: Buffer) {
  const fd = openSync(path, "r+");
  writeSync(fd, data, 0, data.length, position);
  closeSync(fd);
}

describe("reserved space", () => {
  test("JSON slots round-trip in FlatImage's pretty format, NUL-terminated and zero-padded", async () => {
    const image = Image.open(await syntheticImage());
    updateJson(image, SLOTS.environment, Env, (env = {}) => ({ ...env, B: "2", A: "1" }));
    expect(readJson(image, SLOTS.environment, Env)).toEqual({ A: "1", B: "2" });
    expect(readText(image, SLOTS.environment)).toBe('{\n  "A": "1",\n  "B": "2"\n}');
    updateJson(image, SLOTS.environment, Env, () => ({}));
    const bytes = readFileSync(image.path).subarray(image.reservedOffset + SLOTS.environment.offset, image.reservedOffset + SLOTS.environment.offset + 64);
    expect(bytes.toString("latin1")).toBe(`{}${"\0".repeat(62)}`);
  });

  test("a complete journal record left by a killed writer is what readers see, and the next writer applies it", async () => {
    const image = Image.open(await syntheticImage());
    updateJson(image, SLOTS.environment, Env, () => ({ OLD: "1" }));
    // Simulate a writer killed after writing its journal record, before touching the slot.
    poke(image.path, image.reservedOffset + JOURNAL_OFFSET, journalRecord(SLOTS.environment.offset, SLOTS.environment.size, Buffer.from('{"NEW": "2"}')));
    expect(readJson(image, SLOTS.environment, Env)).toEqual({ NEW: "2" });
    updateSlot(image, SLOTS.notify, () => Buffer.from([1]));
    expect(readJson(image, SLOTS.environment, Env)).toEqual({ NEW: "2" });
    const slot = readFileSync(image.path).subarray(image.reservedOffset + SLOTS.environment.offset, image.reservedOffset + SLOTS.environment.offset + 12);
    expect(slot.toString()).toBe('{"NEW": "2"}');
    expect(readFileSync(image.path).subarray(image.reservedOffset + JOURNAL_OFFSET, image.reservedOffset + JOURNAL_OFFSET + 8).every((b) => b === 0)).toBe(true);
  });

  test("a torn journal record (bad checksum) is ignored: the old value stands", async () => {
    const image = Image.open(await syntheticImage());
    updateJson(image, SLOTS.environment, Env, () => ({ OLD: "1" }));
    const record = journalRecord(SLOTS.environment.offset, SLOTS.environment.size, Buffer.from('{"NEW": "2"}'));
    record[record.length - 3]! ^= 0xff; // half-written data
    poke(image.path, image.reservedOffset + JOURNAL_OFFSET, record);
    expect(readJson(image, SLOTS.environment, Env)).toEqual({ OLD: "1" });
    updateSlot(image, SLOTS.notify, () => Buffer.from([1]));
    expect(readJson(image, SLOTS.environment, Env)).toEqual({ OLD: "1" });
  });

  test("byte slots and limits", async () => {
    const image = Image.open(await syntheticImage());
    updateSlot(image, SLOTS.permissions, () => Buffer.from([1, 0, 0, 0, 0, 0, 0, 0x80]));
    expect(readSlot(image, SLOTS.permissions)).toEqual(Buffer.from([1, 0, 0, 0, 0, 0, 0, 0x80]));
    expect(() => updateJson(image, SLOTS.remote, v.any(), () => ({ url: "x".repeat(5000) }), "Not enough space to fit remote URL")).toThrow("Not enough space to fit remote URL");
    expect(JOURNAL_CAPACITY).toBeGreaterThan(1_000_000);
  });

  test("corrupt JSON is reported with the slot's name", async () => {
    const image = Image.open(await syntheticImage());
    poke(image.path, image.reservedOffset + SLOTS.environment.offset, Buffer.from("[1, 2]"));
    expect(() => readJson(image, SLOTS.environment, Env)).toThrow(/^Corrupt environment data in the reserved space of '.*': 0: Invalid type/);
  });
});
