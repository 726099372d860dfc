// Long work shows progress: a commit's compression (mkfs.erofs) and erase steps redraw a line
// on a terminal (a pseudo-terminal made by script(1)), and print a line now and then when
// the output is not a terminal. The second case holds mkfs.erofs stopped (SIGSTOP) until a
// line has come, so the test does not depend on how fast the machine compresses.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";
import { descendants } from "../helpers/proc.ts";

const SCRIPT = Bun.which("script", { PATH: "/usr/bin:/bin" });

let image: TestImage;
beforeEach(() => {
  image = freshImage();
  // 24 MB of incompressible data in 12 files, written straight into the upper directory.
  const upper = join(image.dir, ".app.flatimage.data/root/data");
  mkdirSync(upper, { recursive: true });
  for (let i = 0; i < 12; i++) writeFileSync(join(upper, `f${i}`), randomBytes(2 * 1024 * 1024));
});
afterEach(() => image.cleanup());

const command = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return "";
  }
};

describe("progress", () => {
  test("on a terminal: compression and erasing redraw one line each, ending at 100%", () => {
    if (!SCRIPT) throw new Error("script(1) is missing: install it with apt-get install -y bsdutils");
    const result = Bun.spawnSync([SCRIPT, "-qec", `'${image.path}' fim-layer commit binary`, "/dev/null"], { cwd: image.dir, stdout: "pipe", stderr: "pipe", stdin: "ignore" });
    const out = result.stdout.toString();
    expect(result.exitCode).toBe(0);
    // The first drawing, redrawn in place (\r), and the complete state on its own line.
    expect(out).toMatch(/\rCompressing: \d+% \([\d.]+ of 24\.0 MiB read, [\d.]+ MiB written\) \(0 s\)\x1b\[K\rCompressing: /);
    expect(out).toMatch(/\rCompressing: 100% \(24\.0 of 24\.0 MiB read, 2\d\.\d MiB written\) \(\d+ s\)\x1b\[K\r?\n/);
    expect(out).toMatch(/\rErasing: 0% \(0 of 13 entries\) \(0 s\)\x1b\[K/);
    expect(out).toMatch(/\rErasing: 100% \(13 of 13 entries\) \(\d+ s\)\x1b\[K\r?\n/);
    expect(out).toContain("Filesystem appended to binary without errors");
  }, 120_000);

  test("elsewhere: a line now and then while mkfs.erofs works, then its final state", async () => {
    const child = Bun.spawn([image.path, "fim-layer", "commit", "binary"], { cwd: image.dir, stdout: "pipe", stderr: "pipe" });
    let out = "";
    const reading = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout as ReadableStream<Uint8Array>) out += decoder.decode(chunk);
    })();
    let mkfs: number | undefined;
    while (mkfs === undefined && child.exitCode === null) {
      mkfs = descendants(child.pid).find((pid) => command(pid) === "mkfs.erofs");
      if (mkfs === undefined) await Bun.sleep(1);
    }
    expect(mkfs).toBeDefined();
    process.kill(mkfs!, "SIGSTOP");
    try {
      // A line comes while nothing moves (every 5 s), so this wait is bounded.
      while (!/I::layer-erofs::\d+::Compressing: \d+%/.test(out)) await Bun.sleep(20);
    } finally {
      process.kill(mkfs!, "SIGCONT");
    }
    expect(await child.exited).toBe(0);
    await reading;
    const shown = lines(out);
    const progress = shown.filter((line) => line.startsWith("I::Compressing: "));
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatch(/^I::Compressing: \d+% \([\d.]+ of 24\.0 MiB read, [\d.]+ MiB written\) \([5-9] s\)$/);
    expect(progress.at(-1)).toMatch(/^I::Compressing: 100% \(24\.0 of 24\.0 MiB read, 2\d\.\d MiB written\) \(\d+ s\)$/);
    // In order, between the steps they belong to; nothing drawn for a terminal.
    expect(shown.indexOf(progress[0]!)).toBeGreaterThan(shown.indexOf(`I::Compress filesystem to '${join(image.dir, ".app.flatimage.data/tmp/layer.tmp")}'`));
    expect(shown.indexOf(progress.at(-1)!)).toBeLessThan(shown.indexOf("I::Filesystem created without errors"));
    expect(out).not.toContain("\r");
    expect(shown.filter((line) => line.startsWith("I::Erasing: "))).toEqual([]); // quick: no line
  }, 120_000);
});
