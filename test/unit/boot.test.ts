import { describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { flock, LOCK_EX, LOCK_SH } from "../../core/libc.ts";
import { cachedLayers, ensureExtracted, evict, layerKey, sweepTemporaries } from "../../plugins/layer-extract/cache.ts";
import { deviceNumbers, probeFuse } from "../../plugins/layer-extract/fuse.ts";
import { readOnlyBinds } from "../../plugins/runtime-dir/index.ts";
import { builds, sweepBuilds } from "../../plugins/runtime-dir/store.ts";
import { ROOT } from "../helpers/image.ts";

const scratch = () => mkdtempSync(join(tmpdir(), "fim-unit-boot-"));
const sha256 = (data: Uint8Array) => new Bun.CryptoHasher("sha256").update(data).digest("hex");

describe("the stub's sha256", () => {
  test("the portable and the SHA-extension code give the digest of every length, fed in uneven pieces", () => {
    const dir = scratch();
    const program = join(dir, "sha256");
    const built = spawnSync(["gcc", "-O2", "-DFIM_STUB_SHA256_TEST", "-o", program, join(ROOT, "toolset/src/fim_stub.c")], { stderr: "pipe" });
    if (built.exitCode !== 0) throw new Error(`gcc failed (needs gcc): ${built.stderr.toString()}`);
    for (const size of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 65537, 1 << 20]) {
      const data = crypto.getRandomValues(new Uint8Array(size));
      writeFileSync(join(dir, "data"), data);
      const [portable, shani] = spawnSync([program, join(dir, "data")]).stdout.toString().trim().split("\n");
      expect(portable).toBe(sha256(data));
      // "-" on a CPU without the SHA extensions (the portable code is used there).
      if (shani !== "-") expect(shani).toBe(sha256(data));
    }
  });
});

describe("FUSE detection", () => {
  test("device numbers as glibc encodes them", () => {
    expect(deviceNumbers(2789)).toEqual([10, 229]);
    expect(deviceNumbers(259)).toEqual([1, 3]);
    expect(deviceNumbers((0x12345 & 0xff) | ((259 & 0xfff) << 8) | ((0x12345 & ~0xff) << 12))).toEqual([259, 0x12345]);
  });

  test("missing, not the FUSE device, or refused by FIM_NO_FUSE", () => {
    expect(probeFuse("/nonexistent/fuse", {})).toEqual({ usable: false, why: "/nonexistent/fuse does not exist" });
    expect(probeFuse("/dev/null", {})).toEqual({ usable: false, why: "/dev/null is not the FUSE device (character device 1:3, not character device 10:229; bound to /dev/null?)" });
    expect(probeFuse("/etc/hostname", {}).why).toBe("/etc/hostname is not the FUSE device (not a device, not character device 10:229; bound to /dev/null?)");
    expect(probeFuse("/dev/fuse", { FIM_NO_FUSE: "1" })).toEqual({ usable: false, why: "FIM_NO_FUSE=1 says not to use it" });
    if (existsSync("/dev/fuse")) expect(probeFuse("/dev/fuse", {}).usable).toBe(true); // the test machines make it usable
  });
});

describe("read-only views of the runtime directories", () => {
  test("those below the host directory of a read-write bind (a granted $HOME, a user's bind), where the guest sees them", () => {
    const dir = scratch();
    const home = `${dir}/home`;
    for (const sub of ["a", "home/.cache/fim/app", "home/.cache/fim/layers"]) mkdirSync(join(dir, sub), { recursive: true });
    const dirs = [`${dir}/a`, `${home}/.cache/fim/app`, `${home}/.cache/fim/layers`, `${home}/absent`];
    const ro = (source: string, dest = source) => ({ op: "bind" as const, mode: "ro" as const, source, dest });
    const bind = (mode: "ro" | "rw" | "dev", source: string, dest = source) => ({ op: "bind" as const, mode, source, dest });
    expect(readOnlyBinds(dirs, [])).toEqual([]);
    expect(readOnlyBinds(dirs, [bind("ro", home)])).toEqual([]);
    // The guest's root is a read-write bind at / of a directory elsewhere: nothing of these is below it.
    expect(readOnlyBinds(dirs, [bind("rw", `${dir}/mounts/mount`, "/")])).toEqual([]);
    expect(readOnlyBinds(dirs, [bind("rw", home)])).toEqual([ro(`${home}/.cache/fim/app`), ro(`${home}/.cache/fim/layers`)]);
    expect(readOnlyBinds(dirs, [bind("rw", `${home}/.cache`, "/mnt/cache")])).toEqual([ro(`${home}/.cache/fim/app`, "/mnt/cache/fim/app"), ro(`${home}/.cache/fim/layers`, "/mnt/cache/fim/layers")]);
    expect(readOnlyBinds(dirs, [bind("dev", dir)])).toEqual([ro(`${dir}/a`), ro(`${home}/.cache/fim/app`), ro(`${home}/.cache/fim/layers`)]);
    // A name that merely starts like the bound directory is not below it.
    expect(readOnlyBinds([`${dir}/a`], [bind("rw", `${dir.slice(0, -1)}`)])).toEqual([]);
  });
});

function fakeBuild(root: string, name: string, used: number, locked = true): string {
  const path = join(root, name);
  mkdirSync(join(path, "bin"), { recursive: true });
  if (locked) {
    writeFileSync(join(path, ".lock"), "");
    utimesSync(join(path, ".lock"), used / 1000, used / 1000);
  } else {
    for (const sub of ["bin", ""]) utimesSync(join(path, sub), used / 1000, used / 1000);
  }
  return path;
}

describe("sweeping builds", () => {
  test("the most recently used are kept, the current one and those in use never go, earlier-layout ones after a day", () => {
    const root = scratch();
    const now = Date.now();
    const id = (n: number) => `abcdef0_2026010100000${n}_00000000000${n}`;
    const current = fakeBuild(root, id(9), now - 5_000);
    const recent = [1, 2].map((n) => fakeBuild(root, id(n), now - n * 1000));
    const busy = fakeBuild(root, id(3), now - 100_000);
    const old = fakeBuild(root, id(4), now - 200_000);
    const unlockedRecent = fakeBuild(root, id(5), now - 3600_000, false);
    const unlockedOld = fakeBuild(root, id(6), now - 3 * 86400_000, false);
    mkdirSync(join(root, "not-a-build"));
    const holder = openSync(join(busy, ".lock"), "r");
    try {
      flock(holder, LOCK_SH); // another process of that build
      const removed = sweepBuilds(current, 3, [root]);
      expect(removed.sort()).toEqual([old, unlockedOld].sort());
      expect(readdirSync(root).sort()).toEqual([id(1), id(2), id(3), id(5), id(9), "not-a-build"].sort());
      expect(builds(root).map((build) => build.path).sort()).toEqual([...recent, busy, unlockedRecent, current].sort());
    } finally {
      closeSync(holder);
    }
    // Released: it goes on the next sweep.
    expect(sweepBuilds(current, 3, [root])).toEqual([busy]);
  });

  test("a directory the user made unwritable (with files in it) neither stops a sweep nor stays", () => {
    // As a regular user, rm fails in such a directory: the sweep used to throw there, every time.
    const root = scratch();
    const now = Date.now();
    const id = (n: number) => `abcdef0_2026010100000${n}_00000000000${n}`;
    const locked = (path: string) => {
      mkdirSync(join(path, "sub"), { recursive: true });
      writeFileSync(join(path, "sub", "file"), "x");
      chmodSync(join(path, "sub"), 0o500);
    };
    const current = fakeBuild(root, id(9), now);
    const [a, b, c, d] = [1, 2, 3, 4].map((n) => fakeBuild(root, id(n), now - n * 1000));
    locked(d!);
    const interrupted = join(root, `.${id(5)}.removing.${spawnSync(["true"]).pid}`);
    locked(interrupted);
    expect(sweepBuilds(current, 3, [root])).toEqual([c!, d!]);
    expect(readdirSync(root).sort()).toEqual([id(1), id(2), id(9)].sort());
    expect([a, b].every((path) => existsSync(path!))).toBe(true);
  });
});

describe("the cache of extracted layers", () => {
  test("extracted once, under its lock; a key is remembered until the file changes", () => {
    const dir = scratch();
    const file = join(dir, "layer");
    writeFileSync(file, "layer content");
    const layer = { path: file, offset: 0, size: 13 };
    const key = layerKey(dir, layer);
    expect(key).toBe(sha256(new TextEncoder().encode("layer content")).slice(0, 32));
    writeFileSync(join(dir, "keys.json"), readKeysWith(dir, "ffffffffffffffffffffffffffffffff"));
    expect(layerKey(dir, layer)).toBe("ffffffffffffffffffffffffffffffff"); // remembered, not hashed again
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(layerKey(dir, layer)).toBe(key); // changed: hashed again

    let calls = 0;
    const extract = (temporary: string) => {
      calls++;
      mkdirSync(temporary);
      writeFileSync(join(temporary, "file"), "x".repeat(100));
    };
    const first = ensureExtracted(join(dir, "cache"), key, extract);
    const second = ensureExtracted(join(dir, "cache"), key, extract);
    expect(calls).toBe(1);
    expect([first.fresh, second.fresh]).toEqual([true, false]);
    expect(cachedLayers([join(dir, "cache")])).toEqual([{ path: join(dir, "cache", key), used: expect.any(Number), size: 100 }]);
    expect(() => ensureExtracted(join(dir, "cache"), "0".repeat(32), (temporary) => {
      // Half-way, with a directory the user cannot write to (as in a layer): the error stays the extraction's.
      mkdirSync(join(temporary, "usr"), { recursive: true });
      writeFileSync(join(temporary, "usr", "file"), "x");
      chmodSync(join(temporary, "usr"), 0o500);
      throw new Error("cannot extract");
    })).toThrow("cannot extract");
    expect(readdirSync(join(dir, "cache")).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    closeSync(first.lock);
    closeSync(second.lock);
  });

  test("over the limit, the least recently used go, never one in use or of this run", () => {
    const dir = scratch();
    const make = (key: string, used: number) => {
      const entry = ensureExtracted(dir, key, (temporary) => {
        mkdirSync(temporary);
        writeFileSync(join(temporary, "f"), "y".repeat(1000));
      });
      utimesSync(join(dir, `${key}.lock`), used / 1000, used / 1000);
      return entry;
    };
    const now = Date.now();
    const [a, b, c, d] = ["a", "b", "c", "d"].map((letter, i) => make(letter.repeat(32), now - (4 - i) * 1000));
    closeSync(a!.lock);
    closeSync(c!.lock);
    closeSync(d!.lock);
    // b is held by a run; d belongs to this run.
    const removed = evict([dir], 1500, new Set([join(dir, "d".repeat(32))]));
    expect(removed).toEqual([join(dir, "a".repeat(32)), join(dir, "c".repeat(32))]);
    expect(cachedLayers([dir]).map((layer) => layer.path).sort()).toEqual([join(dir, "b".repeat(32)), join(dir, "d".repeat(32))]);
    closeSync(b!.lock);
  });
});

describe("leftovers of killed layer extractions", () => {
  test("removed when their process is gone or nothing extracts their key; never one being extracted", () => {
    const dir = scratch();
    const gone = spawnSync(["true"]).pid; // a process that has exited
    const living = process.ppid;
    const [a, b, c] = ["a", "b", "c"].map((letter) => letter.repeat(32)) as [string, string, string];
    const leftover = (name: string) => {
      mkdirSync(join(dir, name, "usr"), { recursive: true });
      writeFileSync(join(dir, name, "usr", "file"), "z".repeat(1000));
      chmodSync(join(dir, name, "usr"), 0o500); // a guest's `chmod 500`, kept in a layer
    };
    leftover(`${a}.${gone}.tmp`); // killed while it extracted
    leftover(`${b}.${living}.tmp`); // its PID is used again, and nothing extracts b
    leftover(`${c}.${living}.tmp`); // being extracted: c's lock is held exclusively
    writeFileSync(join(dir, `${b}.lock`), "");
    const extracting = openSync(join(dir, `${c}.lock`), "a");
    flock(extracting, LOCK_EX);
    writeFileSync(join(dir, `keys.json.${gone}.tmp`), "{");
    writeFileSync(join(dir, `keys.json.${living}.tmp`), "{");
    expect(sweepTemporaries(dir).sort()).toEqual([`${a}.${gone}.tmp`, `${b}.${living}.tmp`, `keys.json.${gone}.tmp`].map((name) => join(dir, name)).sort());
    expect(readdirSync(dir).sort()).toEqual([`${b}.lock`, `${c}.${living}.tmp`, `${c}.lock`, `keys.json.${living}.tmp`].sort());
    closeSync(extracting);
    expect(sweepTemporaries(dir)).toEqual([join(dir, `${c}.${living}.tmp`)]);
  });
});

function readKeysWith(dir: string, key: string): string {
  const keys = JSON.parse(readFileSync(join(dir, "keys.json"), "utf8")) as Record<string, string>;
  return JSON.stringify(Object.fromEntries(Object.keys(keys).map((id) => [id, key])));
}
