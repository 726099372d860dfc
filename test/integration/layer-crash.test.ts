// fim-layer remove and squash killed (SIGKILL, with the tools they started) at chosen moments
// of their work: the image then has either its old layers or its new ones, and runs showing
// the matching files; nothing is left beside it, and the command run again completes.
// The moments are observed, not timed: a staging directory appearing, mkfs.erofs's output
// appearing, the new image (an O_TMPFILE file, seen through /proc/<pid>/fd) reaching a given
// size, the image file being replaced.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, type RunResult, type TestImage } from "../helpers/image.ts";
import { descendants } from "../helpers/proc.ts";

let base: TestImage;
let prepared: string;
beforeAll(() => {
  base = freshImage();
  const ok = (args: string[], env: Record<string, string> = {}): RunResult => {
    const result = base.run(args, { env });
    if (result.code !== 0) throw new Error(`${args.join(" ")}: ${result.stdout}${result.stderr}`);
    return result;
  };
  // Layer 1: 40 MB of incompressible data, so that copying and compressing take a while.
  const big = join(base.dir, "big.src");
  for (let i = 0; i < 20; i++) {
    mkdirSync(join(big, "data", `d${i % 4}`), { recursive: true });
    writeFileSync(join(big, "data", `d${i % 4}`, `f${i}`), randomBytes(2 * 1024 * 1024));
  }
  ok(["fim-layer", "create", big, join(base.dir, "big.layer")], { FIM_COMPRESSION_LEVEL: "0" });
  ok(["fim-layer", "add", join(base.dir, "big.layer")]);
  ok(["fim-exec", "sh", "-c", "mkdir -p /w && echo two > /w/two && rm /data/d1/f1"]);
  ok(["fim-layer", "commit", "binary"]);
  ok(["fim-exec", "sh", "-c", "echo three > /w/three && echo changed > /data/d2/f2"]);
  ok(["fim-layer", "commit", "binary"]);
  rmSync(join(base.dir, "big.src"), { recursive: true });
  rmSync(join(base.dir, "big.layer"));
  prepared = join(base.dir, "prepared.flatimage");
  copyFileSync(base.path, prepared);
}, 120_000);
afterAll(() => base.cleanup());

let serial = 0;

/** A copy of the prepared image in a directory of its own. */
function copy(): TestImage {
  const image = freshImage(prepared, "app.flatimage");
  serial++;
  return image;
}

interface State {
  layers: string;
  view: string;
}

function state(image: TestImage): State {
  const layers = image.run(["fim-layer", "list"]);
  expect(layers.code).toBe(0);
  const view = image.run(["fim-exec", "sh", "-c", "cat /w/* 2>&1; ls /data/*; md5sum /data/*/*"]);
  expect(view.code).toBe(0);
  return { layers: layers.stdout.replaceAll(image.path, "IMAGE"), view: view.stdout };
}

/** Size of the O_TMPFILE file the process writes in `dir`, if it has one open. */
function newImageSize(pid: number, dir: string): number | undefined {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (target.startsWith(`${dir}/#`) && target.endsWith(" (deleted)")) return statSync(`/proc/${pid}/fd/${fd}`).size;
    }
  } catch {
    // gone
  }
  return undefined;
}

type Moment = { name: string; reached(image: TestImage, pid: number): boolean };

const rewriting = (fraction: number): Moment => ({
  name: `the new image at ${Math.round(fraction * 100)}%`,
  reached: (image, pid) => (newImageSize(pid, image.dir) ?? -1) >= fraction * statSync(prepared).size * 0.6,
});
const replaced: Moment = {
  name: "the image replaced",
  reached: (image) => statSync(image.path).ino !== originalInode.get(image.path),
};
const originalInode = new Map<string, number>();

/** Runs `args` on a fresh copy, kills it (and its tools) at `moment`, and returns the copy. */
async function interrupt(args: string[], moment: Moment): Promise<{ image: TestImage; reached: boolean }> {
  const image = copy();
  originalInode.set(image.path, statSync(image.path).ino);
  const child = Bun.spawn([image.path, ...args], { cwd: image.dir, stdout: "ignore", stderr: "ignore", env: { ...process.env, FIM_COMPRESSION_LEVEL: "0" } });
  let reached = false;
  const deadline = Date.now() + 120_000;
  while (child.exitCode === null && Date.now() < deadline) {
    if (moment.reached(image, child.pid)) {
      reached = true;
      const tools = descendants(child.pid);
      child.kill(9);
      for (const pid of tools) {
        try {
          process.kill(pid, 9);
        } catch {
          // already gone
        }
      }
      break;
    }
    await Bun.sleep(1);
  }
  await child.exited;
  return { image, reached };
}

function strays(image: TestImage): string[] {
  return readdirSync(image.dir).filter((name) => name !== "app.flatimage" && name !== ".app.flatimage.data");
}

async function check(args: string[], moments: Moment[], before: State, after: State): Promise<void> {
  let interrupted = 0;
  for (const moment of moments) {
    const { image, reached } = await interrupt(args, moment);
    try {
      if (reached) interrupted++;
      const now = state(image);
      const which = now.layers === before.layers ? "old" : now.layers === after.layers ? "new" : "neither";
      expect({ moment: moment.name, which }).not.toEqual({ moment: moment.name, which: "neither" });
      expect({ moment: moment.name, view: now.view }).toEqual({ moment: moment.name, view: which === "old" ? before.view : after.view });
      if (which === "old") {
        // Run again: it completes over whatever the interrupted one left.
        const again = image.run(args, { env: { FIM_COMPRESSION_LEVEL: "0" } });
        expect({ moment: moment.name, code: again.code, stderr: again.stderr }).toEqual({ moment: moment.name, code: 0, stderr: "" });
        expect(state(image)).toEqual(after);
        expect({ moment: moment.name, strays: strays(image) }).toEqual({ moment: moment.name, strays: [] });
        const tmp = join(image.dir, ".app.flatimage.data/tmp");
        expect(existsSync(tmp) ? readdirSync(tmp) : []).toEqual([]);
      } else expect({ moment: moment.name, strays: strays(image) }).toEqual({ moment: moment.name, strays: [] });
    } finally {
      image.cleanup();
    }
  }
  // Most moments must really have been reached, or the test shows nothing.
  expect(interrupted).toBeGreaterThanOrEqual(moments.length - 1);
}

/** The states before and after `args` on an uninterrupted copy. */
function states(args: string[]): { before: State; after: State } {
  const image = copy();
  try {
    const before = state(image);
    const run = image.run(args, { env: { FIM_COMPRESSION_LEVEL: "0" } });
    expect(run.code).toBe(0);
    const after = state(image);
    expect(after).not.toEqual(before);
    return { before, after };
  } finally {
    image.cleanup();
  }
}

describe("interrupted layer rewrites", () => {
  test("fim-layer remove killed at any moment", async () => {
    const args = ["fim-layer", "remove", "2"];
    const { before, after } = states(args);
    await check(args, [rewriting(0), rewriting(0.3), rewriting(0.7), rewriting(0.95), replaced], before, after);
  }, 300_000);

  test("fim-layer squash killed at any moment", async () => {
    const args = ["fim-layer", "squash", "1", "3"];
    const { before, after } = states(args);
    const staging: Moment = {
      name: "unpacking",
      reached: (image, pid) => existsSync(join(image.dir, `.app.flatimage.data/tmp/squash-${pid}/1`)),
    };
    const compressing: Moment = {
      name: "compressing",
      reached: (image, pid) => {
        const dir = join(image.dir, `.app.flatimage.data/tmp/squash-${pid}`);
        return existsSync(dir) && readdirSync(dir).some((name) => name.startsWith("squashed.layer."));
      },
    };
    await check(args, [staging, compressing, rewriting(0.1), rewriting(0.6), replaced], before, after);
  }, 300_000);
});
