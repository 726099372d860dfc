// Removing and measuring trees (core/tree.ts), and a run's in-process clean-up that uses it. Among the
// integration tests because they also run as the regular user, for whom modes matter (root ignores them).
import { afterEach, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Launch, type RunFacts } from "../../core/launch.ts";
import { removeAll, removeTree, sweepRemovals, treeSize } from "../../core/tree.ts";

const made: string[] = [];
afterEach(() => {
  for (const dir of made.splice(0)) {
    Bun.spawnSync(["chmod", "-R", "u+rwx", dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), "fim-tree-"));
  made.push(dir);
  return dir;
}

/** A tree as a kernel overlay and a guest leave it: work/work of mode 000, a read-only directory with files. */
function lockedTree(at: string): string {
  const tree = join(at, "tree");
  mkdirSync(join(tree, "work/work/inner"), { recursive: true });
  writeFileSync(join(tree, "work/work/inner/file"), "x");
  mkdirSync(join(tree, "kept"));
  writeFileSync(join(tree, "kept/file"), "y");
  chmodSync(join(tree, "work/work/inner"), 0o000);
  chmodSync(join(tree, "work/work"), 0o000);
  chmodSync(join(tree, "kept"), 0o500);
  return tree;
}

test("removeAll removes a tree whatever its directories' modes", () => {
  const tree = lockedTree(scratch());
  expect(removeAll(tree)).toBe(true);
  expect(existsSync(tree)).toBe(false);
});

test("removeAll removes a symbolic link, not what it points to", () => {
  const dir = scratch();
  const outside = join(dir, "outside");
  mkdirSync(outside);
  writeFileSync(join(outside, "precious"), "keep");
  const tree = join(dir, "tree");
  mkdirSync(tree);
  symlinkSync(outside, join(tree, "link"));
  expect(removeAll(tree)).toBe(true);
  expect(readdirSync(outside)).toEqual(["precious"]);
});

test("removeTree moves the tree aside before removing it, and says when there is nothing to move", () => {
  const dir = scratch();
  const tree = lockedTree(dir);
  expect(removeTree(tree)).toBe(true);
  expect(readdirSync(dir)).toEqual([]);
  expect(removeTree(join(dir, "absent"))).toBe(false);
});

test("sweepRemovals takes the leftovers of ended removals, not those of a removal in progress", () => {
  const dir = scratch();
  const ended = Bun.spawnSync(["true"]).pid; // its PID names no process now
  const running = Bun.spawn(["sleep", "30"]);
  try {
    mkdirSync(join(dir, `.old.removing.${ended}`));
    mkdirSync(join(dir, `.busy.removing.${running.pid}`));
    mkdirSync(join(dir, "build"));
    sweepRemovals(dir);
    expect(readdirSync(dir).sort()).toEqual([`.busy.removing.${running.pid}`, "build"]);
  } finally {
    running.kill();
  }
});

test("treeSize counts the files' bytes and does not follow links", () => {
  const dir = scratch();
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "sub"), { recursive: true });
  writeFileSync(join(tree, "a"), "12345");
  writeFileSync(join(tree, "sub/b"), "123");
  writeFileSync(join(dir, "big"), "x".repeat(10_000));
  symlinkSync(join(dir, "big"), join(tree, "link"));
  const linkSize = join(dir, "big").length; // a symbolic link's size is its target's length
  expect(treeSize(tree)).toBe(8 + linkSize);
  expect(treeSize(join(dir, "absent"))).toBe(0);
});

test("a run's clean-up in its own process removes a tree with a directory of mode 000", async () => {
  const tree = lockedTree(scratch());
  const launch = new Launch({ program: "true", args: [], root: false }, {} as RunFacts);
  launch.after.push({ kind: "remove", paths: [tree] });
  const errors: unknown[] = [];
  await launch.unwind((error) => errors.push(error));
  expect(errors).toEqual([]);
  expect(existsSync(tree)).toBe(false);
});
