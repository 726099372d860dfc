// fim-layer round trips, and what the guest sees of each layer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
let upper: string;
beforeAll(() => {
  image = freshImage();
  upper = join(image.dir, ".app.flatimage.data/root");
});
afterAll(() => image.cleanup());

function tree(dir: string, files: Record<string, string>) {
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, ".."), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
}

function layerFrom(name: string, files: Record<string, string>): string {
  const dir = join(image.dir, `${name}.src`);
  tree(dir, files);
  const out = join(image.dir, `${name}.layer`);
  const result = image.run(["fim-layer", "create", dir, out]);
  expect(result.code).toBe(0);
  return out;
}

const cat = (path: string) => image.run(["fim-exec", "cat", path]);

describe("fim-layer", () => {
  test("create prints its steps and writes a layer", () => {
    const dir = join(image.dir, "first.src");
    tree(dir, { "opt/app/data.txt": "from layer one\n", "opt/app/shared.txt": "one\n", "etc/gone.txt": "to be deleted\n" });
    const out = join(image.dir, "first.layer");
    const result = image.run(["fim-layer", "create", dir, out]);
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toEqual([
      "I::Gathering files to compress...",
      "I::Compression level: '7'",
      `I::Compress filesystem to '${out}'`,
      "I::Filesystem created without errors",
    ]);
    expect(statSync(out).size).toBeGreaterThan(0);
    expect(readdirSync(image.dir).filter((name) => name.includes(".tmp"))).toEqual([]);
  });

  test("add appends it: listed, and its files are visible in the guest", () => {
    const added = image.run(["fim-layer", "add", join(image.dir, "first.layer")]);
    expect(added.code).toBe(0);
    expect(lines(added.stdout)).toEqual([`I::Included novel layer from file '${join(image.dir, "first.layer")}'`]);
    // Layer 0 is the bundle's root filesystem.
    const listed = image.run(["fim-layer", "list"]).stdout.trim().split("\n");
    expect(listed).toHaveLength(2);
    expect(listed[0]).toMatch(new RegExp(`^0:\\d+:\\d+:${image.path}$`));
    expect(listed[1]).toMatch(new RegExp(`^1:\\d+:${statSync(join(image.dir, "first.layer")).size}:${image.path}$`));
    expect(cat("/opt/app/data.txt").stdout).toBe("from layer one\n");
  });

  test("writes land in the upper directory; commit binary makes them a layer and empties it", () => {
    const write = image.run(["fim-exec", "sh", "-c", "echo two > /opt/app/shared.txt; mkdir -p /srv/new; echo new > /srv/new/file; rm /etc/gone.txt"]);
    expect(write.code).toBe(0);
    expect(readFileSync(join(upper, "opt/app/shared.txt"), "utf8")).toBe("two\n");
    const whiteout = statSync(join(upper, "etc/gone.txt"));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    const commit = image.run(["fim-layer", "commit", "binary"]);
    expect(commit.code).toBe(0);
    expect(lines(commit.stdout).slice(-3)).toEqual([
      `I::Included novel layer from file '${join(image.dir, ".app.flatimage.data/tmp/layer.tmp")}'`,
      "I::Filesystem appended to binary without errors",
      "I::Finished erasing files",
    ]);
    expect(existsSync(join(upper, "opt/app/shared.txt"))).toBe(false);
    expect(existsSync(join(upper, "etc/gone.txt"))).toBe(false);
    expect(image.run(["fim-layer", "list"]).stdout.trim().split("\n")).toHaveLength(3);
    // The later layer overrides the earlier one, and the deletion survived the commit.
    expect(cat("/opt/app/shared.txt").stdout).toBe("two\n");
    expect(cat("/srv/new/file").stdout).toBe("new\n");
    expect(cat("/etc/gone.txt").code).not.toBe(0);
    expect(cat("/opt/app/data.txt").stdout).toBe("from layer one\n");
  });

  test("commit layer saves layer-NNN.layer in the data directory; commit file saves where asked", () => {
    image.run(["fim-exec", "sh", "-c", "echo three > /opt/app/shared.txt"]);
    const commit = image.run(["fim-layer", "commit", "layer"]);
    expect(commit.code).toBe(0);
    const saved = join(image.dir, ".app.flatimage.data/layers/layer-000.layer");
    expect(lines(commit.stdout)).toContain(`I::Layer saved to '${saved}'`);
    expect(lines(commit.stdout)).toContain("I::Layer number: 0");
    expect(image.run(["fim-layer", "list"]).stdout.trim().split("\n")[3]).toBe(`3:0:${statSync(saved).size}:${saved}`);
    expect(cat("/opt/app/shared.txt").stdout).toBe("three\n");

    image.run(["fim-exec", "sh", "-c", "echo four > /opt/app/shared.txt"]);
    const file = join(image.dir, "saved.layer");
    expect(image.run(["fim-layer", "commit", "file", file]).code).toBe(0);
    expect(cat("/opt/app/shared.txt").stdout).toBe("three\n"); // the saved file is not mounted
    image.run(["fim-exec", "sh", "-c", "echo five > /opt/app/x"]);
    const again = image.run(["fim-layer", "commit", "file", file]);
    expect(again.code).toBe(125);
    expect(lines(again.stderr)).toEqual(["E::Destination file already exists", "E::Failed to commit layer", "C::The program exited with an error"]);
  });

  test("FIM_LAYERS adds files and directories of layers, in order", () => {
    const a = layerFrom("extra-a", { "opt/extra.txt": "a\n" });
    const b = layerFrom("extra-b", { "opt/extra.txt": "b\n" });
    const dir = join(image.dir, "extras");
    mkdirSync(dir);
    writeFileSync(join(dir, "1.layer"), readFileSync(a));
    writeFileSync(join(dir, "2.layer"), readFileSync(b));
    expect(cat("/opt/extra.txt").code).not.toBe(0);
    expect(image.run(["fim-exec", "cat", "/opt/extra.txt"], { env: { FIM_LAYERS: `${b}:${a}` } }).stdout).toBe("a\n");
    expect(image.run(["fim-exec", "cat", "/opt/extra.txt"], { env: { FIM_LAYERS: dir } }).stdout).toBe("b\n");
    // Embedded layers, then FIM_LAYERS (missing paths ignored), then the data directory's.
    const listed = image.run(["fim-layer", "list"], { env: { FIM_LAYERS: `${a}:/nonexistent` } }).stdout.trim().split("\n");
    expect(listed[3]).toBe(`3:0:${statSync(a).size}:${a}`);
    expect(listed[4]).toEndWith(`:${image.dir}/.app.flatimage.data/layers/layer-000.layer`);
  });

  test("invalid layer files are refused or skipped with a clear message", () => {
    const junk = join(image.dir, "junk.layer");
    writeFileSync(junk, "this is not a layer".repeat(300));
    const added = image.run(["fim-layer", "add", junk]);
    expect(added.code).toBe(125);
    expect(lines(added.stderr)).toEqual([`E::'${junk}' is not a valid layer: not a layer of a known format`, "E::Failed to add layer", "C::The program exited with an error"]);

    const big = layerFrom("big", { "data.bin": require("node:crypto").randomBytes(256 * 1024).toString("hex") });
    const cut = join(image.dir, "cut.layer");
    writeFileSync(cut, readFileSync(big));
    truncateSync(cut, 4096 + 100);
    expect(lines(image.run(["fim-layer", "add", cut]).stderr)[0]).toMatch(/is not a valid layer: it is truncated: its superblock needs \d+ bytes, the layer has 4196$/);

    const corrupt = join(image.dir, "corrupt.layer");
    writeFileSync(corrupt, readFileSync(join(image.dir, "first.layer")));
    const fd = openSync(corrupt, "r+");
    writeSync(fd, Buffer.from([40]), 0, 1, 1024 + 12); // block size 2^40
    closeSync(fd);
    expect(lines(image.run(["fim-layer", "add", corrupt]).stderr)[0]).toMatch(/its superblock has an invalid block size/);

    const listed = image.run(["fim-layer", "list"], { env: { FIM_LAYERS: junk } });
    expect(listed.code).toBe(0);
    expect(lines(listed.stderr)).toEqual([`W::Skipping invalid layer '${junk}': not a layer of a known format`]);
    expect(image.run(["fim-exec", "true"], { env: { FIM_LAYERS: junk } }).code).toBe(0);
  });

  test("parse errors", () => {
    const cases: [string[], string][] = [
      [["fim-layer"], "Missing op for 'fim-layer' (create,add,commit,list)"],
      [["fim-layer", "zap"], "Invalid layer operation 'zap' (one of: create, add, commit, list)"],
      [["fim-layer", "none"], "Invalid layer operation"],
      [["fim-layer", "add"], "add requires exactly one argument (/path/to/file.layer)"],
      [["fim-layer", "add", "a", "b"], "add requires exactly one argument (/path/to/file.layer)"],
      [["fim-layer", "create", "a"], "create requires exactly two arguments (/path/to/dir /path/to/file.layer)"],
      [["fim-layer", "commit"], "Missing op for 'commit' (binary,layer,file)"],
      [["fim-layer", "commit", "zip"], "Invalid commit operation 'zip' (one of: binary, layer, file)"],
      [["fim-layer", "commit", "none"], "Invalid commit operation"],
      [["fim-layer", "commit", "file"], "Missing path for 'file' operation"],
      [["fim-layer", "commit", "binary", "x"], "Trailing arguments for fim-layer commit: ['x',]"],
      [["fim-layer", "list", "x"], "Trailing arguments for fim-layer list: ['x',]"],
    ];
    for (const [args, message] of cases) {
      const result = image.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([`C::${message}`, "C::Could not parse arguments", "C::The program exited with an error"]);
    }
    const missing = image.run(["fim-layer", "create", join(image.dir, "nope"), join(image.dir, "x.layer")]);
    expect(lines(missing.stderr)).toEqual([`E::Source directory '${join(image.dir, "nope")}' does not exist`, "E::Failed to create layer", "C::The program exited with an error"]);
    const clean = freshImage();
    try {
      const empty = clean.run(["fim-layer", "commit", "binary"]);
      expect(empty.code).toBe(125);
      expect(lines(empty.stderr)[0]).toBe(`E::Nothing to commit: '${join(clean.dir, ".app.flatimage.data/root")}' is empty`);
    } finally {
      clean.cleanup();
    }
  });

  test("the managed layer limit", () => {
    const layers = join(image.dir, ".app.flatimage.data/layers");
    writeFileSync(join(layers, "layer-999.layer"), readFileSync(join(image.dir, "first.layer")));
    image.run(["fim-exec", "sh", "-c", "echo over > /opt/over"]);
    const result = image.run(["fim-layer", "commit", "layer"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(["E::Maximum number of layers exceeded", "E::Failed to commit layer", "C::The program exited with an error"]);
    expect(readFileSync(join(upper, "opt/over"), "utf8")).toBe("over\n"); // the upper directory is intact
  });
});
