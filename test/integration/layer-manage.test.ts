// Managing layers after the fact: fim-layer list --long, remove and squash, on the blueprint
// image (as root and as a regular user): what the guest sees before and after, what the file
// weighs, a program running while its layers are removed, configuration writes during a
// squash, and the errors.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
let upper: string;
beforeAll(() => {
  image = freshImage();
  upper = join(image.dir, ".app.flatimage.data/root");
});
afterAll(() => image.cleanup());

function ok(args: string[], env?: Record<string, string>) {
  const result = image.run(args, { env });
  if (result.code !== 0) throw new Error(`${args.join(" ")} failed (${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

/** Writes through the guest, then commits the change as a layer of the image. */
function layer(script: string): void {
  ok(["fim-exec", "sh", "-c", script]);
  ok(["fim-layer", "commit", "binary"]);
}

/** Everything the guest sees under the given directories: type, and a checksum for files. */
function view(...dirs: string[]): string {
  return ok(["fim-exec", "sh", "-c", `for d in ${dirs.join(" ")}; do [ -e "$d" ] && find "$d"; done | sort | while read -r p; do if [ -f "$p" ]; then echo "$p $(md5sum < "$p")"; elif [ -L "$p" ]; then echo "$p -> $(readlink "$p")"; else echo "$p"; fi; done`]).stdout;
}

const plain = () => ok(["fim-layer", "list"]).stdout.trim().split("\n");
const long = () => ok(["fim-layer", "list", "--long"]).stdout.trimEnd().split("\n");
const noLeftovers = () => expect(readdirSync(image.dir).filter((name) => name.includes("fim-layer"))).toEqual([]);

describe("fim-layer list --long", () => {
  test("one line per layer: index, size, where it is, what it holds; plain list unchanged", () => {
    // Data the guest cannot make goes straight into the upper directory (no run is active).
    mkdirSync(join(upper, "opt/app"), { recursive: true });
    writeFileSync(join(upper, "opt/app/big.bin"), randomBytes(300 * 1024));
    layer("echo hello > /opt/app/readme && ln -s readme /opt/app/link");
    layer("rm /opt/app/readme /etc/host.conf && mkdir -p /srv/data && echo x > /srv/data/x");
    const listed = long();
    expect(listed).toHaveLength(3);
    expect(listed[0]).toMatch(/^0 +\d+\.\d (KiB|MiB)  image  \d+ entries, /);
    // Sizes in the second column are the compressed layers; the rest is their content.
    expect(listed[1]).toMatch(/^1 +\d+\.\d KiB  image  5 entries, 300\.0 KiB unpacked; opt\/app\/big\.bin 300\.0 KiB, opt\/app\/readme 6 B$/);
    expect(listed[2]).toMatch(/^2 +\d+\.\d KiB  image  8 entries, 2 B unpacked, 2 deleted; srv\/data\/x 2 B$/);
    expect(ok(["fim-layer", "list", "-l"]).stdout.trimEnd().split("\n")).toEqual(listed);
    // The reference's format, for scripts.
    const sizes = plain().map((line) => line.split(":"));
    expect(sizes.map((fields) => fields[0])).toEqual(["0", "1", "2"]);
    expect(sizes.every((fields) => fields[3] === image.path)).toBe(true);

    ok(["fim-exec", "sh", "-c", "echo m > /srv/managed"]);
    ok(["fim-layer", "commit", "layer"]);
    const managed = join(image.dir, ".app.flatimage.data/layers/layer-000.layer");
    expect(long()[3]).toMatch(new RegExp(`^3 +\\d+\\.\\d KiB  ${managed}  2 entries, 2 B unpacked; srv/managed 2 B$`));
  });
});

describe("fim-layer squash", () => {
  test("merges embedded layers: the guest sees the same, and what was deleted no longer takes space", () => {
    // Layer 3: a big file that layer 4 deletes again; layer 4 also replaces a file of layer 1.
    ok(["fim-layer", "remove", "3"]);
    mkdirSync(join(upper, "opt/tmp"), { recursive: true });
    writeFileSync(join(upper, "opt/tmp/huge.bin"), randomBytes(2 * 1024 * 1024));
    layer("echo three > /opt/tmp/keep");
    layer("rm /opt/tmp/huge.bin && echo four > /opt/app/link && mkdir -p /opt/new/deep && echo n > /opt/new/deep/n");
    const before = view("/opt", "/srv", "/etc");
    const sizeBefore = statSync(image.path).size;
    expect(plain()).toHaveLength(5);

    const squashed = ok(["fim-layer", "squash", "1", "4"]);
    expect(lines(squashed.stdout)).toContain("I::Merging layers 1 to 4");
    expect(lines(squashed.stdout).at(-1)).toMatch(/^I::The image is now \d+\.\d MiB \(was \d+\.\d MiB\)$/);
    expect(plain()).toHaveLength(2);
    expect(view("/opt", "/srv", "/etc")).toBe(before);
    // Layer 2 deleted /etc/host.conf of layer 0: still deleted, through the merged layer.
    expect(image.run(["fim-exec", "cat", "/etc/host.conf"]).code).not.toBe(0);
    expect(statSync(image.path).size).toBeLessThan(sizeBefore - 1.5 * 1024 * 1024);
    expect(long()[1]).not.toContain("huge.bin");
    expect(readdirSync(join(image.dir, ".app.flatimage.data/tmp"))).toEqual([]);
    noLeftovers();
  }, 60_000);

  test("down to layer 0: one layer, the same view, no deletion marks left", () => {
    const before = view("/opt", "/srv", "/etc");
    ok(["fim-layer", "squash", "0", "1"]);
    expect(plain()).toHaveLength(1);
    expect(view("/opt", "/srv", "/etc")).toBe(before);
    expect(long()[0]).not.toContain("deleted");
    expect(ok(["fim-exec", "sh", "-c", "echo works"]).stdout).toBe("works\n");
  }, 60_000);
});

describe("fim-layer remove", () => {
  test("removes an embedded layer or a layer of the data directory; the others stay", () => {
    layer("mkdir -p /r && echo a > /r/a");
    layer("mkdir -p /r && echo b > /r/b");
    layer("mkdir -p /r && echo c > /r/c");
    ok(["fim-exec", "sh", "-c", "mkdir -p /r && echo d > /r/d"]);
    ok(["fim-layer", "commit", "layer"]);
    expect(plain()).toHaveLength(5);
    const removed = ok(["fim-layer", "remove", "2", "4"]);
    expect(lines(removed.stdout)).toEqual([
      expect.stringMatching(/^I::Removed layer 2 \(\d+\.\d KiB, in the image\)$/),
      expect.stringMatching(/^I::The image is now \d+\.\d MiB \(was \d+\.\d MiB\)$/),
      `I::Removed layer 4 ('${join(image.dir, ".app.flatimage.data/layers/layer-000.layer")}')`,
    ]);
    expect(ok(["fim-exec", "ls", "/r"]).stdout).toBe("a\nc\n");
    expect(plain()).toHaveLength(3);
    expect(existsSync(join(image.dir, ".app.flatimage.data/layers/layer-000.layer"))).toBe(false);
    expect(statSync(image.path).mode & 0o777).toBe(0o755);
    noLeftovers();
  }, 60_000);

  test("a running program keeps the layers it started with; the next run sees the change", async () => {
    const run = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; read go; cat /r/c"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    try {
      const reader = (run.stdout as ReadableStream<Uint8Array>).getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
      ok(["fim-layer", "remove", "2"]); // the layer of /r/c
      expect(image.run(["fim-exec", "cat", "/r/c"], { env: { FIM_DIR_DATA: join(image.dir, "other-data") } }).code).not.toBe(0);
      run.stdin!.write("go\n");
      run.stdin!.end();
      const rest = await reader.read();
      expect(new TextDecoder().decode(rest.value)).toBe("c\n");
      expect(await run.exited).toBe(0);
    } finally {
      run.kill(9);
      await run.exited;
    }
    expect(ok(["fim-exec", "ls", "/r"]).stdout).toBe("a\n");
  }, 60_000);

  test("configuration written while layers are squashed is kept", async () => {
    layer("mkdir -p /r && echo e > /r/e");
    layer("mkdir -p /r && echo f > /r/f");
    const squash = Bun.spawn([image.path, "fim-layer", "squash", "1", "3"], { stdout: "pipe", stderr: "pipe" });
    for (let i = 0; i < 8; i++) ok(["fim-env", "add", `DURING_${i}=${i}`]);
    expect(await squash.exited).toBe(0);
    expect(ok(["fim-env", "list"]).stdout.trim().split("\n").filter((line) => line.startsWith("DURING_"))).toHaveLength(8);
    expect(ok(["fim-exec", "ls", "/r"]).stdout).toBe("a\ne\nf\n");
  }, 60_000);

  test("errors: index out of range, layer 0, layers from FIM_LAYERS, squash outside the image", () => {
    const count = plain().length;
    const fail = (args: string[], env: Record<string, string> | undefined, ...messages: string[]) => {
      const result = image.run(args, { env });
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([...messages, "C::The program exited with an error"]);
    };
    fail(["fim-layer", "remove", "7"], undefined, `E::No layer 7: it has layers 0 to ${count - 1} (see fim-layer list)`, "E::Failed to remove layer");
    fail(["fim-layer", "remove", "0"], undefined, "E::Layer 0 is the image's root filesystem: it cannot be removed (fim-layer squash can merge layers into it)", "E::Failed to remove layer");
    const extra = join(image.dir, "extra.src");
    mkdirSync(extra);
    writeFileSync(join(extra, "x"), "x");
    ok(["fim-layer", "create", extra, join(image.dir, "extra.layer")]);
    const env = { FIM_LAYERS: join(image.dir, "extra.layer") };
    fail(["fim-layer", "remove", String(count)], env, `E::Layer ${count} ('${join(image.dir, "extra.layer")}') comes from FIM_LAYERS, not from the image: leave it out of that variable instead`, "E::Failed to remove layer");
    fail(["fim-layer", "squash", "0", String(count)], env, `E::Only layers embedded in the image can be squashed: layer ${count} is '${join(image.dir, "extra.layer")}'`, "E::Failed to squash layers");
    expect(plain()).toHaveLength(count);
  });

  test("parse errors and help", () => {
    expectParseError(image, ["fim-layer"], "Missing op for 'fim-layer' (create,add,commit,list,remove,squash)");
    expectParseError(image, ["fim-layer", "remove"], "Missing index for 'remove' (see fim-layer list)");
    expectParseError(image, ["fim-layer", "remove", "1", "x"], "Invalid layer index 'x' for 'remove': expected a number as fim-layer list shows");
    expectParseError(image, ["fim-layer", "remove", "-1"], "Invalid layer index '-1' for 'remove': expected a number as fim-layer list shows");
    expectParseError(image, ["fim-layer", "squash", "1"], "squash requires two indices, the first and the last layer to merge (see fim-layer list)");
    expectParseError(image, ["fim-layer", "squash", "2", "1"], "squash needs the lower index first and at least two layers: 'squash 2 1'");
    expectParseError(image, ["fim-layer", "squash", "1", "1"], "squash needs the lower index first and at least two layers: 'squash 1 1'");
    expectParseError(image, ["fim-layer", "squash", "1", "2", "3"], "Trailing arguments for fim-layer squash: ['3',]");
    expectParseError(image, ["fim-layer", "list", "-l", "x"], "Trailing arguments for fim-layer list: ['x',]");
    const help = ok(["fim-help", "layer"]).stdout;
    for (const usage of ["fim-layer <list> [-l|--long]", "fim-layer <remove> <index>...", "fim-layer <squash> <first> <last>"]) expect(help).toContain(usage);
  });
});
