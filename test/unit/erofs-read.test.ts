// The EROFS metadata reader (fim-layer list --long) against mkfs.erofs of the tool set: every
// entry, type and size as the source directory has them, at every compression setting we
// use, including directories of several blocks, names that are not UTF-8, whiteouts and
// layers embedded at an offset; a damaged layer is refused with a reason.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LayerEntry } from "../../core/plugin.ts";
import { compressionOptions } from "../../plugins/layer-erofs/index.ts";
import { walkErofs } from "../../plugins/layer-erofs/read.ts";
import { ROOT } from "../helpers/image.ts";

const MKFS = join(ROOT, "toolset/out/x86_64/bin/mkfs.erofs");
const dir = mkdtempSync(join(tmpdir(), "fim-erofs-read-"));
const source = join(dir, "src");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

beforeAll(() => {
  if (!existsSync(MKFS)) throw new Error(`${MKFS} is missing: build the tool set (toolset/build.sh)`);
  mkdirSync(join(source, "usr/share/many"), { recursive: true });
  // Long names in one directory: its entries span several 4 KiB blocks.
  for (let i = 0; i < 600; i++) writeFileSync(join(source, "usr/share/many", `file-with-a-long-name-${String(i).padStart(4, "0")}`), "x".repeat(i));
  writeFileSync(join(source, "usr/big"), Buffer.alloc(3 * 1024 * 1024, 7));
  writeFileSync(join(source, "empty"), "");
  symlinkSync("usr/big", join(source, "link"));
  mkdirSync(join(source, "deep/a/b/c/d"), { recursive: true });
  writeFileSync(Buffer.concat([Buffer.from(`${source}/deep/`), Buffer.from([0x6e, 0xe9, 0xff])]), "latin");
  const whiteout = spawnSync(["mknod", join(source, "deep/gone"), "c", "0", "0"]);
  if (whiteout.exitCode !== 0) throw new Error(`mknod of a whiteout failed: ${whiteout.stderr.toString()}`);
});

/** The source as the reader should see it. */
function expected(): string[] {
  const out: string[] = [];
  const walk = (relative: string) => {
    const names = readdirSync(relative ? Buffer.from(`${source}/${relative}`, "latin1") : source, { encoding: "buffer" }) as Buffer[];
    for (const raw of names) {
      const name = raw.toString("latin1");
      const path = relative ? `${relative}/${name}` : name;
      const info = lstatSync(Buffer.from(`${source}/${path}`, "latin1"));
      const type = info.isDirectory() ? "directory" : info.isSymbolicLink() ? "symlink" : info.isCharacterDevice() ? "char" : "file";
      out.push(`${type} ${type === "file" || type === "symlink" ? info.size : 0} ${info.isCharacterDevice() ? info.rdev : 0} ${path}`);
      if (info.isDirectory()) walk(path);
    }
  };
  walk("");
  return out.sort();
}

function read(path: string, offset = 0): string[] {
  const entries: LayerEntry[] = [];
  walkErofs(path, offset, statSync(path).size - offset, (entry) => entries.push(entry));
  return entries.map((entry) => `${entry.type} ${entry.size} ${entry.rdev} ${entry.path}`).sort();
}

function mkfs(level: number): string {
  const out = join(dir, `level-${level}.erofs`);
  const result = spawnSync([MKFS, ...compressionOptions(level), "--all-root", "--quiet", out, source]);
  if (result.exitCode !== 0) throw new Error(`mkfs.erofs failed: ${result.stderr.toString()}`);
  return out;
}

describe("walkErofs", () => {
  for (const level of [0, 3, 7, 9]) {
    test(`lists what mkfs.erofs stored at compression level ${level}`, () => {
      const listed = read(mkfs(level));
      expect(listed).toEqual(expected());
      expect(listed.length).toBe(600 + 13);
    });
  }

  test("reads a layer at an offset in a bigger file (as embedded in an image)", () => {
    const layer = readFileSync(mkfs(7));
    const image = join(dir, "image");
    writeFileSync(image, Buffer.concat([Buffer.alloc(12345, 1), layer, Buffer.alloc(999, 2)]));
    const entries: LayerEntry[] = [];
    walkErofs(image, 12345, layer.length, (entry) => entries.push(entry));
    expect(entries.map((entry) => `${entry.type} ${entry.size} ${entry.rdev} ${entry.path}`).sort()).toEqual(expected());
  });

  test("a damaged layer is refused with a reason", () => {
    const path = mkfs(7);
    const cut = join(dir, "cut.erofs");
    writeFileSync(cut, readFileSync(path).subarray(0, 6000));
    expect(() => read(cut)).toThrow(/beyond its size|ends before byte|damaged/);
    const junk = join(dir, "junk.erofs");
    writeFileSync(junk, Buffer.alloc(8192, 0x41));
    expect(() => read(junk)).toThrow("it has no EROFS superblock");
    const bad = join(dir, "bad.erofs");
    writeFileSync(bad, readFileSync(path));
    const fd = openSync(bad, "r+");
    writeSync(fd, Buffer.from([30]), 0, 1, 1024 + 12);
    closeSync(fd);
    expect(() => read(bad)).toThrow("its superblock has an invalid block size (2^30)");
  });
});
