// The desktop plugin's parts that need no run: the icon slot, the entry's quoting and escapes, the ids.
import { describe, expect, test } from "bun:test";
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Image } from "../../core/image.ts";
import { readText, SLOTS, updateSlot } from "../../core/reserved.ts";
import { desktopId, entryText, mimeText } from "../../plugins/desktop/files.ts";
import { ICON_MAX, readIcon, writeIcon } from "../../plugins/desktop/icon.ts";
import { syntheticImage } from "../helpers/synthetic.ts";

const JOURNAL_OFFSET = 3162125;

function poke(path: string, position: number, data: Buffer) {
  const fd = openSync(path, "r+");
  writeSync(fd, data, 0, data.length, position);
  closeSync(fd);
}

describe("icon slot", () => {
  test("layout is upstream's: extension, data, u64 size at +1048568", async () => {
    const image = Image.open(await syntheticImage());
    const data = Buffer.from("\x89PNG\r\n\x1a\nabc", "latin1");
    writeIcon(image, { extension: "png", data });
    const bytes = readFileSync(image.path).subarray(image.reservedOffset + SLOTS.icon.offset, image.reservedOffset + SLOTS.icon.offset + SLOTS.icon.size);
    expect(bytes.subarray(0, 4)).toEqual(Buffer.from("png\0", "latin1"));
    expect(bytes.subarray(4, 4 + data.length)).toEqual(data);
    expect(bytes.subarray(4 + data.length, 1048568).every((byte) => byte === 0)).toBe(true);
    expect(bytes.readBigUInt64LE(1048568)).toBe(BigInt(data.length));
    expect(readIcon(image)).toEqual({ extension: "png", data });
    // A smaller icon leaves no trace of the bigger one.
    writeIcon(image, { extension: "svg", data: Buffer.from("<svg/>") });
    expect(readIcon(image)).toEqual({ extension: "svg", data: Buffer.from("<svg/>") });
    expect(readFileSync(image.path).subarray(image.reservedOffset + SLOTS.icon.offset + 10, image.reservedOffset + SLOTS.icon.offset + 20).every((b) => b === 0)).toBe(true);
  });

  test("the largest icon fits; one byte more is refused and the stored icon is kept", async () => {
    const image = Image.open(await syntheticImage());
    const largest = Buffer.alloc(ICON_MAX, 1);
    writeIcon(image, { extension: "jpg", data: largest });
    expect(readIcon(image)?.data.equals(largest)).toBe(true);
    expect(() => writeIcon(image, { extension: "png", data: Buffer.alloc(ICON_MAX + 1) })).toThrow("Not enough space to fit icon data: 1048565 vs 1048564");
    expect(readIcon(image)?.data.equals(largest)).toBe(true);
  });

  test("a write interrupted after any step reads as no icon, never a torn one", async () => {
    const image = Image.open(await syntheticImage());
    writeIcon(image, { extension: "png", data: Buffer.alloc(1000, 1) });
    const base = image.reservedOffset + SLOTS.icon.offset;
    // After step 1 (size and extension cleared) and part of step 2 (new data half written).
    poke(image.path, base + 1048568, Buffer.alloc(8));
    expect(readIcon(image)).toBeUndefined();
    poke(image.path, base, Buffer.alloc(4));
    poke(image.path, base + 4, Buffer.alloc(500, 2));
    expect(readIcon(image)).toBeUndefined();
    // A size beyond the data area is corrupt, and said so.
    poke(image.path, base, Buffer.from("png\0"));
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(ICON_MAX + 1));
    poke(image.path, base + 1048568, size);
    expect(() => readIcon(image)).toThrow("Corrupt icon data");
  });

  test("an icon write goes around the journal: a pending record for another slot survives it", async () => {
    const image = Image.open(await syntheticImage());
    const data = Buffer.from('{"A":"1"}');
    const head = Buffer.alloc(24);
    head.write("FIMJRNL\x01", 0, "latin1");
    head.writeUInt32LE(SLOTS.environment.offset, 8);
    head.writeUInt32LE(SLOTS.environment.size, 12);
    head.writeUInt32LE(data.length, 16);
    head.writeUInt32LE((Bun.hash.crc32(data) ^ SLOTS.environment.offset ^ SLOTS.environment.size) >>> 0, 20);
    poke(image.path, image.reservedOffset + JOURNAL_OFFSET, Buffer.concat([head, data]));
    writeIcon(image, { extension: "png", data: Buffer.alloc(ICON_MAX, 3) });
    expect(readText(image, SLOTS.environment)).toBe('{"A":"1"}');
    updateSlot(image, SLOTS.notify, () => Buffer.from([1])); // applies the leftover record
    expect(readText(image, SLOTS.environment)).toBe('{"A":"1"}');
    expect(readIcon(image)?.data.equals(Buffer.alloc(ICON_MAX, 3))).toBe(true);
  });
});

describe("desktop entry", () => {
  test("odd image paths are quoted for Exec and the entry validates", () => {
    const desktop = { name: "Odd", categories: ["Utility"], integrations: [] };
    const path = '/tmp/a dir/$HOME "q" `x` back\\slash 100%.flatimage';
    const text = entryText(desktop, path);
    expect(text.split("\n")[4]).toBe('Exec="/tmp/a dir/\\\\$HOME \\\\"q\\\\" \\\\`x\\\\` back\\\\\\\\slash 100%%.flatimage" %F');
    const validator = Bun.which("desktop-file-validate", { PATH: "/usr/bin:/bin" });
    if (!validator) throw new Error("desktop-file-validate is missing: apt-get install -y desktop-file-utils (scripts/prepare.sh does)");
    const file = join(mkdtempSync(join(tmpdir(), "fim-entry-")), "flatimage-Odd.desktop");
    writeFileSync(file, text);
    const result = Bun.spawnSync([validator, file]);
    expect(result.stdout.toString() + result.stderr.toString()).toBe("");
    expect(result.exitCode).toBe(0);
    // A line break or tab is written as its escape: the entry keeps its lines.
    const broken = entryText(desktop, "/tmp/line\nbreak\tand tab.flatimage");
    expect(broken.split("\n")).toHaveLength(8);
    expect(broken.split("\n")[4]).toBe('Exec="/tmp/line\\nbreak\\tand tab.flatimage" %F');
    writeFileSync(file, broken);
    const again = Bun.spawnSync([validator, file]);
    expect(again.stdout.toString() + again.stderr.toString()).toBe("");
    expect(() => entryText(desktop, "/tmp/bell\x07.flatimage")).toThrow("contains control characters");
  });

  test("names become ids that file names, icon names and MIME types accept", () => {
    expect(desktopId("MyApp")).toBe("MyApp");
    expect(desktopId("my-app_2.0+x")).toBe("my-app_2.0+x");
    expect(desktopId("XTerm Sandbox")).toBe("XTerm_Sandbox");
    expect(desktopId("a/b;c=d\ne")).toBe("a_b_c_d_e");
    // Other scripts keep apart: the UTF-8 bytes of each character.
    expect(desktopId("Café")).toBe("Caf_c3a9");
    expect(desktopId("编辑器")).not.toBe(desktopId("浏览器"));
    const desktop = { name: "XTerm Sandbox", categories: ["System"], integrations: [] };
    expect(entryText(desktop, "/x.flatimage").split("\n").slice(5, 7)).toEqual(["Icon=flatimage_XTerm_Sandbox", "MimeType=application/flatimage_XTerm_Sandbox;"]);
    expect(mimeText(desktop, "/dir/x.flatimage")).toContain('<mime-type type="application/flatimage_XTerm_Sandbox">');
  });
});
