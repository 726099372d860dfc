// lib/path.ts gives node:path's (POSIX) results: compared on every path of up to seven
// characters made of `a`, `b`, `.` and `/`, and on every pair of up to four for join/resolve.
import { expect, test } from "bun:test";
import { posix } from "node:path";
import * as path from "../../lib/path.ts";

const alphabet = ["a", "b", ".", "/"];
function pathsUpTo(length: number): string[] {
  const paths = [""];
  for (let i = 0; i < paths.length; i++) if (paths[i]!.length < length) for (const c of alphabet) paths.push(paths[i]! + c);
  return paths;
}
const single = pathsUpTo(7);
const pairs = pathsUpTo(4);

test("the corpus has every such path once", () => {
  expect(single.length).toBe((4 ** 8 - 1) / 3);
  expect(new Set(single).size).toBe(single.length);
});

for (const name of ["normalize", "basename", "dirname", "extname", "isAbsolute"] as const) {
  test(`${name} of one path`, () => {
    const differ = single.filter((p) => path[name](p) !== posix[name](p));
    expect(differ.map((p) => [p, path[name](p), posix[name](p)])).toEqual([]);
  });
}

for (const name of ["join", "resolve"] as const) {
  test(`${name} of two paths, of none and of three`, () => {
    const differ: string[][] = [];
    for (const a of pairs) for (const b of pairs) if (path[name](a, b) !== posix[name](a, b)) differ.push([a, b, path[name](a, b), posix[name](a, b)]);
    expect(differ).toEqual([]);
    expect(path[name]()).toBe(posix[name]());
    expect(path[name]("/x/", "../y", "z/")).toBe(posix[name]("/x/", "../y", "z/"));
    expect(path[name]("x", "", "..", "y")).toBe(posix[name]("x", "", "..", "y"));
  });
}
