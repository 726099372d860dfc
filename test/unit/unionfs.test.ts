// The union filesystem's bookkeeping, without a mount: what the kernel forgets is dropped.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UnionFs } from "../../plugins/unionfs/union.ts";

const dir = mkdtempSync(join(tmpdir(), "fim-unionfs-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("nodes and places the kernel forgets are dropped, also for other spellings (casefold)", () => {
  const [upper, lower] = [join(dir, "upper"), join(dir, "lower")];
  mkdirSync(join(lower, "Sub"), { recursive: true });
  mkdirSync(upper);
  for (let i = 0; i < 100; i++) writeFileSync(join(lower, "Sub", `File${i}`), "x");
  const fs = new UnionFs({ upper, lowers: [lower], casefold: true });
  const sub = fs.lookup(1, "sub").node;
  const aliases = fs.lookup(1, "SUB").node;
  expect(aliases).not.toBe(sub);
  const found: number[] = [];
  for (let i = 0; i < 100; i++) found.push(fs.lookup(sub, `file${i}`).node, fs.lookup(aliases, `File${i}`).node);
  expect(fs.kept).toEqual({ nodes: 1 + 2 + 200, places: 1 + 100 });
  for (const node of found) fs.forget(node, 1);
  fs.forget(sub, 1);
  fs.forget(aliases, 1);
  expect(fs.kept).toEqual({ nodes: 1, places: 0 });
});
