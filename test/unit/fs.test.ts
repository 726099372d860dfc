// lib/fs.ts: node:fs loaded on first use, and the calls a brief command makes through the C
// library instead (reading a file at an offset, its size, access(2), writing a stream).
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { canAccess, closeFile, openForReading, readAt, sizeOf, writeAll } from "../../lib/fs.ts";
import { errno, errnoText, ffi, usesNativeFfi } from "../../lib/libc.ts";

const dir = mkdtempSync(join(tmpdir(), "fim-fs-unit-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const bun = process.execPath;

describe("reading without node:fs", () => {
  test("bytes at an offset, fewer at the end of the file, and the file's size", () => {
    const file = join(dir, "data");
    writeFileSync(file, Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251)));
    const fd = openForReading(file);
    try {
      expect(sizeOf(fd)).toBe(10_000);
      expect([...readAt(fd, 5000, 4)]).toEqual([5000 % 251, 5001 % 251, 5002 % 251, 5003 % 251]);
      expect(readAt(fd, 9998, 100).length).toBe(2);
      expect(readAt(fd, 20_000, 8).length).toBe(0);
    } finally {
      closeFile(fd);
    }
  });

  test("a descriptor that cannot be read is reported as node:fs reports it", () => {
    const fd = openForReading(dir); // a directory opens, and reading it fails
    try {
      expect(() => readAt(fd, 0, 8)).toThrow(expect.objectContaining({ code: "EISDIR" }));
    } finally {
      closeFile(fd);
    }
  });

  test("a file that cannot be opened is reported as node:fs reports it", () => {
    expect(() => openForReading(join(dir, "absent"))).toThrow(`ENOENT: no such file or directory, open '${join(dir, "absent")}'`);
    expect(() => openForReading(`${dir}/a\0b`)).toThrow();
  });

  test("access(2): existence and writability", () => {
    const file = join(dir, "readonly");
    writeFileSync(file, "");
    chmodSync(file, 0o444);
    expect(canAccess(file, 0)).toBe(true);
    expect(canAccess(join(dir, "absent"), 0)).toBe(false);
    expect(canAccess(dir, 2 | 1)).toBe(true);
    // root may write anything: the mode only decides for a regular user.
    expect(canAccess(file, 2)).toBe(process.getuid!() === 0);
    expect(canAccess(`${file}\0x`, 0)).toBe(false);
  });

  test("none of it loads node:fs; the first other call does", () => {
    const script = `
      import { canAccess, closeFile, nodeFsLoaded, openForReading, readAt, sizeOf, writeAll } from ${JSON.stringify(join(import.meta.dir, "../../lib/fs.ts"))};
      const fd = openForReading(${JSON.stringify(import.meta.path)});
      readAt(fd, 0, 10); sizeOf(fd); closeFile(fd); canAccess("/", 0); writeAll(1, "written\\n");
      const before = nodeFsLoaded();
      const { existsSync } = await import(${JSON.stringify(join(import.meta.dir, "../../lib/fs.ts"))});
      existsSync("/");
      console.log(before === undefined, nodeFsLoaded() !== undefined);`;
    const result = spawnSync([bun, "-e", script], { stdout: "pipe", stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toBe("written\ntrue true\n");
  });
});

describe("the C library's calls", () => {
  test("go through the engine's own FFI object (bun:ffi's module costs ~0.8 ms of every start): a Bun upgrade without it falls back, and this test says so", () => {
    expect(usesNativeFfi()).toBe(true);
    expect(ffi()).not.toBe(require("bun:ffi"));
  });

  test("a library that cannot be opened throws, as bun:ffi's dlopen does", () => {
    expect(() => ffi().dlopen(join(dir, "absent.so"), { getpid: { args: [], returns: "i32" } })).toThrow("absent.so");
  });

  test("errno and its text, and 64-bit results as numbers where they fit", () => {
    expect(canAccess(join(dir, "absent"), 0)).toBe(false);
    expect(errno()).toBe(2);
    expect(errnoText(2)).toBe("No such file or directory");
    const fd = openForReading(import.meta.path);
    try {
      expect(sizeOf(fd)).toBe(readFileSync(import.meta.path).length);
    } finally {
      closeFile(fd);
    }
  });
});

describe("writing a stream", () => {
  test("all of a text larger than a pipe holds, read while it is written", async () => {
    const text = "x".repeat(300_000) + "\n";
    const script = `import { writeAll } from ${JSON.stringify(join(import.meta.dir, "../../lib/fs.ts"))}; writeAll(1, "x".repeat(300000) + "\\n");`;
    const child = Bun.spawn([bun, "-e", script], { stdout: "pipe" });
    expect(await new Response(child.stdout).text()).toBe(text);
    expect(await child.exited).toBe(0);
  });

  test("a reader that has gone is no error: false", () => {
    const script = join(dir, "writer.ts");
    writeFileSync(script, `import { writeAll } from ${JSON.stringify(join(import.meta.dir, "../../lib/fs.ts"))};
      let result = true; for (let i = 0; i < 50 && result; i++) result = writeAll(1, "y".repeat(100000)); console.error(String(result));`);
    // head reads ten bytes and exits: the writer meets a closed pipe.
    const result = spawnSync(["bash", "-c", `"$0" "$1" | head -c 10 >/dev/null`, bun, script], { stdout: "pipe", stderr: "pipe" });
    expect(result.stderr.toString()).toBe("false\n");
  });
});

test("the fs facade has what node:fs has under the same names", async () => {
  const facade = await import("../../lib/fs.ts");
  const fs = await import("node:fs");
  for (const [name, value] of Object.entries(facade)) {
    if (name in fs && typeof value === "function") expect(typeof (fs as Record<string, unknown>)[name]).toBe("function");
  }
  expect(facade.constants.O_DIRECTORY).toBe(fs.constants.O_DIRECTORY);
  expect(facade.mkdtempSync(join(dir, "t-"))).toStartWith(join(dir, "t-"));
});

test("no module of the launcher imports node:fs, node:path, node:os or node:buffer itself (a brief command would load it again)", () => {
  const root = join(import.meta.dir, "../..");
  // Each module and the one that stands for it (lib/path.ts replaces node:path outright).
  const standIn: Record<string, string> = { fs: "lib/fs.ts", os: "lib/node.ts", buffer: "lib/node.ts", path: "lib/path.ts" };
  const offenders: string[] = [];
  for (const dir of ["core", "lib", "plugins"]) {
    for (const file of new Bun.Glob("**/*.ts").scanSync({ cwd: join(root, dir) })) {
      const path = `${dir}/${file}`;
      const text = readFileSync(join(root, path), "utf8");
      for (const [name, owner] of Object.entries(standIn)) {
        if (path === owner) continue;
        const imported = new RegExp(`^import (?!type )[^;]*from "node:${name}(/promises)?";`, "m").test(text);
        if (imported || text.includes(`require("node:${name}")`)) offenders.push(`${path}: node:${name}`);
      }
    }
  }
  expect(offenders).toEqual([]);
});
