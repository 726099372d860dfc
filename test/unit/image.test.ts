import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { FimError } from "../../core/errors.ts";
import { embeddedLayers, HEADER_PREFIX, Image, RESERVED_SIZE } from "../../core/image.ts";
import { syntheticImage } from "../helpers/synthetic.ts";

describe("image format", () => {
  test("header, tools, reserved space and layers are where the header says", async () => {
    const path = await syntheticImage({ layers: [Buffer.from("first layer"), Buffer.from("second")] });
    const image = Image.open(path);
    const bytes = readFileSync(path);
    expect(bytes.subarray(8, 11)).toEqual(Buffer.from("FI\x01", "latin1"));
    expect(image.stubSize).toBe(64);
    expect(image.header.buildId).toMatch(/^abcdef0_20260101000000_[0-9a-f]{12}$/);
    const stored = (part: { offset: number; size: number }) => Buffer.from(Bun.zstdDecompressSync(bytes.subarray(part.offset, part.offset + part.size))).toString();
    const [tool] = image.header.tools;
    expect(stored(tool!)).toBe("#!/bin/sh\necho tool\n");
    expect(tool!.rawSize).toBe(20);
    expect(tool!.sha256).toBe(new Bun.CryptoHasher("sha256").update("#!/bin/sh\necho tool\n").digest("hex"));
    expect(image.reservedOffset).toBe(tool!.offset + tool!.size);
    const { boot } = image.header;
    expect(boot.parts.map((part) => [part.path, stored(part)])).toEqual([["bin/fim_boot", "launcher bytes"], ["lib/ld-linux-x86-64.so.2", "loader bytes"]]);
    // The stub's table: magic, size, part count, reserved offset, CPU level, the brief
    // commands' bytes, names, then the parts and the brief commands.
    const table = bytes.subarray(boot.table.offset, boot.table.offset + boot.table.size);
    const text = (at: number, size: number) => table.subarray(at, at + size).toString("latin1").replace(/\0+$/, "");
    expect(text(0, 8)).toBe("FIMBOOT\x02");
    const brief = "default\0fim-exec\0";
    expect([table.readUInt32LE(8), table.readUInt32LE(12), Number(table.readBigUInt64LE(16)), table.readUInt32LE(24), table.readUInt32LE(28)]).toEqual([
      256 + 2 * 128 + brief.length,
      2,
      image.reservedOffset,
      2,
      brief.length,
    ]);
    expect(table.subarray(256 + 2 * 128).toString("latin1")).toBe(brief);
    expect([text(32, 64), text(96, 64), text(160, 64), text(224, 32)]).toEqual([image.header.buildId, "lib/ld-linux-x86-64.so.2", "bin/fim_boot", "lib"]);
    const loader = table.subarray(256 + 128, 256 + 256);
    const [part] = boot.parts.slice(1);
    expect([text(256 + 128, 64), Number(loader.readBigUInt64LE(64)), Number(loader.readBigUInt64LE(72)), Number(loader.readBigUInt64LE(80))]).toEqual([part!.path, part!.offset, part!.size, 12]);
    expect(loader.subarray(88, 120).toString("hex")).toBe(new Bun.CryptoHasher("sha256").update(bytes.subarray(part!.offset, part!.offset + part!.size)).digest("hex"));
    expect(loader.readUInt32LE(120)).toBe(0o755);
    expect(bytes.subarray(image.reservedOffset, image.reservedOffset + RESERVED_SIZE).every((b) => b === 0)).toBe(true);
    const layers = embeddedLayers(image, () => {});
    expect(layers.map((l) => bytes.subarray(l.offset, l.offset + l.size).toString())).toEqual(["first layer", "second"]);
  });

  test("damage is reported, never thrown as a raw error", async () => {
    const path = await syntheticImage();
    const image = Image.open(path);
    truncateSync(path, image.reservedOffset + 100);
    expect(() => Image.open(path)).toThrow(/is truncated: the reserved space/);

    const other = await syntheticImage();
    const fd = openSync(other, "r+");
    writeSync(fd, Buffer.from("XX"), 0, 2, 64);
    closeSync(fd);
    expect(() => Image.open(other)).toThrow(/has no image header after its launcher/);

    const text = `${other}.txt`;
    writeFileSync(text, "hello");
    expect(() => Image.open(text)).toThrow(/is not an ELF executable/);
    expect(() => Image.open(`${other}.missing`)).toThrow(/Could not open image file/);
  });

  /** The synthetic image's header JSON, changed by `change` (the same length), written back without its digest. */
  async function withHeader(change: (header: Record<string, unknown>) => void): Promise<string> {
    const path = await syntheticImage();
    const bytes = readFileSync(path);
    const length = bytes.readUInt32LE(64 + 8);
    const header = JSON.parse(bytes.subarray(64 + HEADER_PREFIX, 64 + HEADER_PREFIX + length).toString());
    change(header);
    const replaced = Buffer.from(JSON.stringify(header).padEnd(length, " "));
    expect(replaced.length).toBe(length);
    const fd = openSync(path, "r+");
    writeSync(fd, replaced, 0, length, 64 + HEADER_PREFIX);
    closeSync(fd);
    return path;
  }

  test("a header that fails the schema names the field", async () => {
    const path = await withHeader((header) => (header.timestamp = "yesterday"));
    expect(() => Image.open(path)).toThrow(/corrupt image header \(timestamp: /);
  });

  test("a header that fits the schema but is not what the build wrote is refused too (a digit changed in an offset)", async () => {
    const path = await withHeader((header) => (header.reserved = (header.reserved as number) - 1));
    expect(() => Image.open(path)).toThrow(/corrupt image header \(it does not match its sha256\)$/);
  });

  test("the header is stored with the sha256 of its JSON", async () => {
    const path = await syntheticImage();
    const bytes = readFileSync(path);
    const length = bytes.readUInt32LE(64 + 8);
    expect(bytes.subarray(64, 72).toString("latin1")).toBe("FIMAGE\0\x03");
    const json = bytes.subarray(64 + HEADER_PREFIX, 64 + HEADER_PREFIX + length);
    expect(bytes.subarray(64 + 12, 64 + HEADER_PREFIX).toString("hex")).toBe(new Bun.CryptoHasher("sha256").update(json).digest("hex"));
    expect(JSON.parse(json.toString()).buildId).toBe(Image.open(path).header.buildId);
  });

  test("a layer running past the end of the file is damage: an error naming the layer, not a layer dropped", async () => {
    const path = await syntheticImage({ layers: [Buffer.from("ok")] });
    const fd = openSync(path, "a");
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(1000n);
    writeSync(fd, Buffer.concat([size, Buffer.from("short")]));
    closeSync(fd);
    const image = Image.open(path);
    let error: FimError | undefined;
    try {
      embeddedLayers(image, () => {});
    } catch (caught) {
      error = caught as FimError;
    }
    expect(error).toBeInstanceOf(FimError);
    expect(error!.exitCode).toBe(125);
    expect(error!.chain[0]!.level).toBe("C");
    expect(error!.message).toBe(`The image '${path}' is damaged (truncated?): layer 1 at offset ${image.layersOffset + 10} needs 1000 bytes, but the file ends after 5`);
  });

  test("a size word cut short is damage too", async () => {
    const path = await syntheticImage({ layers: [Buffer.from("ok")] });
    const fd = openSync(path, "a");
    writeSync(fd, Buffer.from([5, 0, 0]));
    closeSync(fd);
    expect(() => embeddedLayers(Image.open(path), () => {})).toThrow(/damaged \(truncated\?\): the size of layer 1 at offset \d+ is cut short \(3 of 8 bytes\)/);
  });

  test("a zero size word ends the layers quietly: an interrupted append left it", async () => {
    const path = await syntheticImage({ layers: [Buffer.from("ok")] });
    const fd = openSync(path, "a");
    writeSync(fd, Buffer.concat([Buffer.alloc(8), Buffer.from("half of a layer")]));
    closeSync(fd);
    const notes: string[] = [];
    const layers = embeddedLayers(Image.open(path), (note) => notes.push(note));
    expect(layers.map((layer) => layer.size)).toEqual([2]);
    expect(notes).toEqual([expect.stringMatching(/^Layers end at offset \d+: 23 bytes of an interrupted append follow$/)]);
  });
});
