// fim-layer squash's merge: random stacks of layers (files, directories, symlinks, whiteouts,
// opaque directories marked either way) must look the same, read with an overlay's lookup
// rules, before and after the squashed range is merged into one layer; the whiteouts left
// in the merged layer all hide something below it (the kernel overlay would list the others
// as entries); merging down to the lowest layer leaves no marks behind.
import { afterAll, expect, test } from "bun:test";
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as libc from "../../lib/fuse/libc.ts";
import { mergeLayers } from "../../plugins/layer/merge.ts";

const dir = mkdtempSync(join(tmpdir(), "fim-merge-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const OPAQUE_FILE = ".wh..wh..opq";

/** A small seeded generator (mulberry32): the same seed makes the same layers. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const kind = (path: string) => lstatSync(path, { throwIfNoEntry: false });

function isOpaque(path: string): boolean {
  for (const mark of ["user.overlay.opaque", "trusted.overlay.opaque"]) {
    try {
      const value = libc.getxattr(path, mark, 16);
      if (typeof value !== "number" && value.toString() === "y") return true;
    } catch {
      // no such attribute
    }
  }
  return kind(join(path, OPAQUE_FILE)) !== undefined;
}

const whiteout = (path: string) => libc.mknod(path, 0o20000 | 0o644, 0);

/** Makes `count` layers under `root` from `seed`; returns their directories, lowest first. */
function makeLayers(root: string, seed: number, count: number): string[] {
  const next = random(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
  const dirs = ["", "a", "a/b", "c", "c/d"];
  const names = ["x", "y", "a", "b", "c", "d"];
  const layers: string[] = [];
  for (let i = 0; i < count; i++) {
    const layer = join(root, String(i));
    mkdirSync(layer, { recursive: true });
    for (let op = 0; op < 8; op++) {
      const parent = pick(dirs);
      const path = parent ? join(layer, parent, pick(names)) : join(layer, pick(names));
      // Parents are plain directories of this layer; skip when a file is in the way.
      try {
        mkdirSync(join(path, ".."), { recursive: true });
      } catch {
        continue;
      }
      if (kind(path)) continue;
      const what = next();
      if (what < 0.35) writeFileSync(path, `${i}:${op}:${Math.floor(next() * 1000)}`);
      else if (what < 0.45) symlinkSync(`target-${i}-${op}`, path);
      else if (what < 0.65) whiteout(path);
      else if (what < 0.8) mkdirSync(path);
      else {
        mkdirSync(path);
        if (next() < 0.5) libc.setxattr(path, "user.overlay.opaque", Buffer.from("y"), 0);
        else writeFileSync(join(path, OPAQUE_FILE), "");
        if (next() < 0.5) writeFileSync(join(path, pick(names)), `inside ${i}:${op}`);
      }
    }
    layers.push(layer);
  }
  return layers;
}

/** What a guest sees of a stack (lowest first), by the overlay's lookup rules. */
function view(layers: string[]): Map<string, string> {
  const seen = new Map<string, string>();
  const visit = (relative: string, branches: string[]) => {
    const names = new Set<string>();
    for (const branch of branches) for (const name of readdirSync(branch)) if (name !== OPAQUE_FILE) names.add(name);
    for (const name of [...names].sort()) {
      const path = relative ? `${relative}/${name}` : name;
      let found: string | undefined;
      const merged: string[] = [];
      for (const branch of branches) {
        const at = join(branch, name);
        const info = kind(at);
        if (!info) continue;
        if (info.isCharacterDevice() && info.rdev === 0) break;
        if (found === undefined) {
          if (info.isDirectory()) {
            found = "dir";
            merged.push(at);
            if (isOpaque(at)) break;
            continue;
          }
          found = info.isSymbolicLink() ? `link ${readlinkSync(at)}` : `file ${readFileSync(at, "utf8")}`;
          break;
        }
        if (!info.isDirectory()) break;
        merged.push(at);
        if (isOpaque(at)) break;
      }
      if (found === undefined) continue;
      seen.set(path, found);
      if (found === "dir") visit(path, merged);
    }
  };
  const roots: string[] = [];
  for (const layer of [...layers].reverse()) {
    roots.push(layer);
    if (isOpaque(layer)) break;
  }
  visit("", roots);
  return seen;
}

/** Every path of the layers (whiteouts aside), as squash collects them from the layers below. */
function paths(layers: string[]): Set<string> {
  const found = new Set<string>();
  const walk = (root: string, relative: string) => {
    for (const name of readdirSync(join(root, relative))) {
      const rel = relative ? `${relative}/${name}` : name;
      const info = lstatSync(join(root, rel));
      if (!(info.isCharacterDevice() && info.rdev === 0)) found.add(rel);
      if (info.isDirectory()) walk(root, rel);
    }
  };
  for (const layer of layers) walk(layer, "");
  return found;
}

/** Whiteouts of `root` that hide nothing: no such path below, or under an opaque directory. */
function idleWhiteouts(root: string, below: Set<string>): string[] {
  const found: string[] = [];
  const walk = (relative: string, hidden: boolean) => {
    for (const name of readdirSync(join(root, relative))) {
      const rel = relative ? `${relative}/${name}` : name;
      const info = lstatSync(join(root, rel));
      if (info.isCharacterDevice() && info.rdev === 0) {
        if (hidden || !below.has(rel)) found.push(rel);
      } else if (info.isDirectory()) walk(rel, hidden || isOpaque(join(root, rel)));
    }
  };
  walk("", isOpaque(root));
  return found;
}

function marksLeft(root: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    for (const name of readdirSync(path)) {
      const at = join(path, name);
      const info = lstatSync(at);
      if (name === OPAQUE_FILE || (info.isCharacterDevice() && info.rdev === 0)) found.push(at);
      else if (info.isDirectory()) {
        if (isOpaque(at)) found.push(`${at} (opaque)`);
        walk(at);
      }
    }
  };
  walk(root);
  return found;
}

test("a squashed range looks the same as the layers it replaces (200 random stacks)", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const count = 2 + (seed % 4);
    const reference = makeLayers(join(dir, `ref-${seed}`), seed, count);
    const copy = makeLayers(join(dir, `sq-${seed}`), seed, count);
    const first = seed % 2 === 0 ? 0 : 1 + (seed % (count - 1));
    const last = count - 1 - (seed % 3 === 0 && first < count - 2 ? 1 : 0);
    if (first >= last) continue;
    const below = paths(copy.slice(0, first));
    const merged = mergeLayers(copy.slice(first, last + 1), below);
    const after = [...copy.slice(0, first), merged, ...copy.slice(last + 1)];
    const label = `seed ${seed}: layers ${first}..${last} of ${count}`;
    expect({ label, view: Object.fromEntries(view(after)) }).toEqual({ label, view: Object.fromEntries(view(reference)) });
    if (first === 0) expect({ label, marks: marksLeft(merged) }).toEqual({ label, marks: [] });
    else expect({ label, idle: idleWhiteouts(merged, below) }).toEqual({ label, idle: [] });
    rmSync(join(dir, `ref-${seed}`), { recursive: true, force: true });
    rmSync(join(dir, `sq-${seed}`), { recursive: true, force: true });
  }
}, 60_000);
