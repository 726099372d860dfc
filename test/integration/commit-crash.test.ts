// A commit killed at any moment leaves the image runnable with its previous layers, and the
// changes it was committing still visible (in the upper directory, or in the new layer).
import { afterAll, beforeAll, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";
import { isRunning } from "../helpers/proc.ts";

let image: TestImage;
const files: Record<string, string> = {};

beforeAll(() => {
  image = freshImage();
  const upper = join(image.dir, ".app.flatimage.data/root");
  // About 24 MB in 120 files: big enough that a commit takes a while.
  for (let i = 0; i < 120; i++) {
    const dir = join(upper, "data", `d${i % 12}`);
    mkdirSync(dir, { recursive: true });
    const content = randomBytes(100 * 1024).toString("hex");
    writeFileSync(join(dir, `f${i}`), content);
    files[`/data/d${i % 12}/f${i}`] = Bun.hash(content).toString();
  }
});
afterAll(() => image.cleanup());

/** The running processes (not zombies) that a run of the image started: they have its FIM_BIN_SELF. */
function helpersOf(path: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      if (!isRunning(Number(pid))) continue;
      if (!readFileSync(`/proc/${pid}/environ`, "utf8").split("\0").includes(`FIM_BIN_SELF=${path}`)) continue;
      found.push(readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0")[0]!);
    } catch {
      // gone, or not ours
    }
  }
  return found;
}

/** What `list` gives once it is empty, or after a second (a killed process's children get their signal at once, but not in the same instant). */
async function noneLeft(list: () => string[]): Promise<string[]> {
  for (let i = 0; i < 100 && list().length > 0; i++) await Bun.sleep(10);
  return list();
}

function viewIsIntact(): void {
  const script = Object.keys(files).map((path) => `cat ${path} | md5sum`).join("; ");
  const result = image.run(["fim-exec", "sh", "-c", script]);
  expect(result.code).toBe(0);
  expect(result.stdout.trim().split("\n")).toHaveLength(Object.keys(files).length);
  // Same content as written (the guest's md5sum of each file must be stable across states).
  const again = image.run(["fim-exec", "sh", "-c", script]);
  expect(again.stdout).toBe(result.stdout);
}

test("kill -9 at several points of a commit", async () => {
  const reference = image.run(["fim-exec", "sh", "-c", Object.keys(files).map((path) => `cat ${path} | md5sum`).join("; ")]).stdout;
  let layers = 0;
  for (const delay of [30, 150, 400, 800, 1500]) {
    const commit = Bun.spawn([image.path, "fim-layer", "commit", "binary"], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(delay);
    commit.kill(9);
    await commit.exited;
    // Its mkfs.erofs dies with it (fim_sigdfl --die-with-parent): nothing works on.
    expect(await noneLeft(() => helpersOf(image.path))).toEqual([]);
    const listed = image.run(["fim-layer", "list"]);
    expect(listed.code).toBe(0);
    const count = listed.stdout.trim() === "" ? 0 : listed.stdout.trim().split("\n").length;
    expect(count === layers || count === layers + 1).toBe(true);
    layers = count;
    expect(image.run(["fim-exec", "sh", "-c", Object.keys(files).map((path) => `cat ${path} | md5sum`).join("; ")]).stdout).toBe(reference);
  }
  // And a commit left alone completes, over whatever an interrupted one left behind.
  image.run(["fim-exec", "sh", "-c", "echo final > /data/final"]);
  const done = image.run(["fim-layer", "commit", "binary"]);
  expect(done.code).toBe(0);
  expect(lines(done.stdout)).toContain("I::Filesystem appended to binary without errors");
  expect(image.run(["fim-exec", "cat", "/data/final"]).stdout).toBe("final\n");
  viewIsIntact();
}, 120_000);
