// The portal's allowlist: names, the slot it lives in, the daemon's arguments.
import { describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import * as v from "valibot";
import { Image, RESERVED_SIZE } from "../../core/image.ts";
import { JOURNAL_CAPACITY, readSlot, SLOTS, updateJson, updateSlot } from "../../core/reserved.ts";
import { checkPrograms, clearPolicy, programProblem, readPolicy, TOO_LARGE, updatePolicy } from "../../plugins/portal/allowlist.ts";
import { hostPath, policyArgs } from "../../plugins/portal/index.ts";
import { syntheticImage } from "../helpers/synthetic.ts";

const JOURNAL_OFFSET = 3162125;

function poke(path: string, position: number, data: Buffer) {
  const fd = openSync(path, "r+");
  writeSync(fd, data, 0, data.length, position);
  closeSync(fd);
}

describe("portal program names", () => {
  test("names and plain absolute paths are accepted; anything a lookup could be steered by is not", () => {
    for (const good of ["xdg-open", "notify-send", "a.b", "...", "/usr/bin/xdg-open", "/opt/My App/run"]) expect(programProblem(good)).toBeUndefined();
    expect(programProblem("")).toBe("it is empty");
    expect(programProblem(".")).toBe("it is not a program name");
    expect(programProblem("..")).toBe("it is not a program name");
    expect(programProblem("a\nb")).toBe("it contains control characters");
    expect(programProblem("a,b")).toBe("it contains a comma");
    for (const relative of ["./xdg-open", "../xdg-open", "bin/xdg-open"]) expect(programProblem(relative)).toStartWith("a path must be absolute");
    for (const unplain of ["/usr/bin/../bin/sh", "/usr//bin/sh", "/usr/bin/./sh", "/usr/bin/", "/"]) {
      expect(programProblem(unplain)).toBe("a path must not contain '.', '..' or empty components");
    }
    expect(() => checkPrograms(["xdg-open", "../x"])).toThrow("Invalid program '../x' for the portal: a path must be absolute");
  });

  test("the host PATH leaves out the runtime's own tool directories and relative entries", () => {
    const paths = { bin: "/tmp/fim/app/1/b/bin", sbin: "/tmp/fim/app/1/b/sbin" };
    expect(hostPath(paths, "/tmp/fim/app/1/b/bin:/home/u/bin:.::bin:/usr/bin:/home/u/bin:/usr/bin/:/tmp/fim/app/1/b/sbin")).toBe("/home/u/bin:/usr/bin:/usr/bin/");
  });

  test("the daemon gets either --all or one --allow per program", () => {
    expect(policyArgs({ all: false, programs: [] })).toEqual([]);
    expect(policyArgs({ all: false, programs: ["xdg-open", "/usr/bin/true"] })).toEqual(["--allow", "xdg-open", "--allow", "/usr/bin/true"]);
    expect(policyArgs({ all: true, programs: ["xdg-open"] })).toEqual(["--all"]);
  });
});

describe("the portal slot", () => {
  test("the last 4 KiB of the reserved space, after the journal, which keeps its offset", () => {
    expect(SLOTS.portal.offset + SLOTS.portal.size).toBe(RESERVED_SIZE);
    expect(SLOTS.portal.size).toBe(4096);
    expect(JOURNAL_OFFSET + 24 + JOURNAL_CAPACITY).toBe(SLOTS.portal.offset);
    expect(JOURNAL_CAPACITY).toBe(1_028_059);
    for (const other of Object.values(SLOTS)) if (other !== SLOTS.portal) expect(other.offset + other.size).toBeLessThanOrEqual(JOURNAL_OFFSET);
  });

  test("empty means closed; allow/deny round-trip in FlatImage's JSON format; clear resets", async () => {
    const image = Image.open(await syntheticImage());
    expect(readPolicy(image)).toEqual({ all: false, programs: [] });
    updatePolicy(image, (policy) => ({ ...policy, programs: ["xdg-open", "/usr/bin/true"] }));
    expect(readPolicy(image)).toEqual({ all: false, programs: ["xdg-open", "/usr/bin/true"] });
    const text = readSlot(image, SLOTS.portal).toString("utf8").replace(/\0+$/, "");
    expect(text).toBe('{\n  "all": false,\n  "programs": [\n    "xdg-open",\n    "/usr/bin/true"\n  ]\n}');
    clearPolicy(image);
    expect(readPolicy(image)).toEqual({ all: false, programs: [] });
  });

  test("a list larger than the slot is refused and leaves the list as it was", async () => {
    const image = Image.open(await syntheticImage());
    updatePolicy(image, () => ({ all: false, programs: ["xdg-open"] }));
    const many = Array.from({ length: 400 }, (_, i) => `program-${i}`);
    expect(() => updatePolicy(image, (policy) => ({ ...policy, programs: many }))).toThrow(TOO_LARGE);
    expect(readPolicy(image)).toEqual({ all: false, programs: ["xdg-open"] });
  });

  test("corrupt data is an error naming the slot (the run then keeps the portal closed)", async () => {
    const image = Image.open(await syntheticImage());
    poke(image.path, image.reservedOffset + SLOTS.portal.offset, Buffer.from('{"all": "yes"}'));
    expect(() => readPolicy(image)).toThrow(/^Corrupt portal data in the reserved space of '.*': all: Invalid type/);
    poke(image.path, image.reservedOffset + SLOTS.portal.offset, Buffer.from('{"programs": ["../x"]}\0'));
    expect(() => readPolicy(image)).toThrow(/programs\.0: not a program name or absolute path/);
    clearPolicy(image);
    expect(readPolicy(image)).toEqual({ all: false, programs: [] });
  });

  test("a journal record for the portal slot (beyond the journal) is replayed like any other", async () => {
    const image = Image.open(await syntheticImage());
    const data = Buffer.from('{"all": true}');
    const head = Buffer.alloc(24);
    head.write("FIMJRNL\x01", 0, "latin1");
    head.writeUInt32LE(SLOTS.portal.offset, 8);
    head.writeUInt32LE(SLOTS.portal.size, 12);
    head.writeUInt32LE(data.length, 16);
    head.writeUInt32LE((Bun.hash.crc32(data) ^ SLOTS.portal.offset ^ SLOTS.portal.size) >>> 0, 20);
    poke(image.path, image.reservedOffset + JOURNAL_OFFSET, Buffer.concat([head, data]));
    expect(readPolicy(image)).toEqual({ all: true, programs: [] });
    updateSlot(image, SLOTS.notify, () => Buffer.from([1]));
    expect(readPolicy(image)).toEqual({ all: true, programs: [] });
  });

  test("the largest journaled write (an environment at the journal's capacity) does not reach the portal slot", async () => {
    const image = Image.open(await syntheticImage());
    updatePolicy(image, () => ({ all: false, programs: ["xdg-open"] }));
    const value = "x".repeat(JOURNAL_CAPACITY - '{\n  "K": ""\n}'.length);
    updateJson(image, SLOTS.environment, v.record(v.string(), v.string()), () => ({ K: value }));
    expect(readPolicy(image)).toEqual({ all: false, programs: ["xdg-open"] });
    const tail = readFileSync(image.path).subarray(image.reservedOffset + JOURNAL_OFFSET + 24, image.reservedOffset + SLOTS.portal.offset);
    expect(tail.length).toBe(JOURNAL_CAPACITY);
    expect(() => updateJson(image, SLOTS.environment, v.record(v.string(), v.string()), () => ({ K: `${value}x` }))).toThrow("Not enough space to fit json data");
  });
});
