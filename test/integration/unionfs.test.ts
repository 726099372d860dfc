// The union filesystem on real FUSE mounts, served from source on the host through
// fusermount3 (as whoever runs the suite: root, then the regular user): every kind of
// change, the marks left in the upper directory, casefold, names that are not UTF-8,
// programs run from the mount, and a killed server.
import { afterEach, describe, expect, test } from "bun:test";
import { spawn, spawnSync, type Subprocess } from "bun";
import {
  chmodSync,
  chownSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  unlinkSync,
  writeFileSync,
  copyFileSync,
  appendFileSync,
  closeSync,
  fstatSync,
  openSync,
  readSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { mountDirect, mountWithFusermount } from "../../lib/fuse/index.ts";
import * as libc from "../../lib/fuse/libc.ts";
import { ROOT } from "../helpers/image.ts";
/** fim_supervise, whose janitor unmounts when a server ends. */
const JANITOR = join(import.meta.dir, "../../toolset/out/x86_64/bin/fim_supervise");

const SERVER = join(ROOT, "test/fixtures/serve-unionfs.ts");
const uid = process.getuid!();

interface Mount {
  dir: string;
  mnt: string;
  upper: string;
  lowers: string[];
  server: Subprocess<"ignore", "pipe", "pipe">;
}

let current: Mount | undefined;

function mounted(path: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .some((line) => line.split(" ")[4] === path);
}

/** Lays out the lower directories with `populate`, then mounts the union at <dir>/mnt. */
async function mountUnion(populate: (lowers: string[]) => void, options: { casefold?: boolean; lowers?: number } = {}): Promise<Mount> {
  const dir = mkdtempSync(join(tmpdir(), "fim-unionfs-"));
  chmodSync(dir, 0o755);
  const lowers = Array.from({ length: options.lowers ?? 2 }, (_, index) => join(dir, `lower${index}`));
  const [mnt, upper, work] = ["mnt", "upper", "work"].map((name) => join(dir, name)) as [string, string, string];
  for (const path of [mnt, upper, work, ...lowers]) mkdirSync(path);
  populate(lowers);
  const request = { mountpoint: mnt, upper, lowers, work, casefold: options.casefold ?? false, mount: "fusermount", janitor: JANITOR, ttl: 1 };
  const server = spawn([process.execPath, SERVER, JSON.stringify(request)], { stdout: "pipe", stderr: "pipe" });
  const reader = server.stdout.getReader();
  const first = await reader.read();
  reader.releaseLock();
  if (new TextDecoder().decode(first.value ?? new Uint8Array()) !== "ready\n") {
    throw new Error(`the server did not start: ${await new Response(server.stderr).text()}`);
  }
  current = { dir, mnt, upper, lowers, server };
  return current;
}

afterEach(async () => {
  if (!current) return;
  const { dir, mnt, server } = current;
  current = undefined;
  spawnSync(["fusermount3", "-u", "-z", mnt]);
  server.kill("SIGKILL");
  await server.exited;
  spawnSync(["chmod", "-R", "u+rwx", dir]);
  rmSync(dir, { recursive: true, force: true });
});

const sh = (script: string, cwd: string) => spawnSync(["bash", "-c", script], { cwd, stdout: "pipe", stderr: "pipe" });
const isWhiteout = (path: string) => {
  const stat = lstatSync(path);
  return stat.isCharacterDevice() && stat.rdev === 0;
};
const opaque = (path: string) => {
  const value = libc.getxattr(path, "user.overlay.opaque", 16);
  return typeof value !== "number" && value.toString() === "y";
};

describe("union of an upper directory over lower ones", () => {
  test("the top layer wins; new files land in the upper directory and lower ones never change", async () => {
    const { mnt, upper, lowers } = await mountUnion(([top, bottom]) => {
      writeFileSync(join(top!, "both"), "top\n");
      writeFileSync(join(bottom!, "both"), "bottom\n");
      writeFileSync(join(bottom!, "only-bottom"), "b\n");
    });
    expect(readdirSync(mnt).sort()).toEqual(["both", "only-bottom"]);
    expect(readFileSync(join(mnt, "both"), "utf8")).toBe("top\n");
    writeFileSync(join(mnt, "new"), "new\n");
    appendFileSync(join(mnt, "only-bottom"), "more\n");
    expect(readFileSync(join(upper, "new"), "utf8")).toBe("new\n");
    expect(readFileSync(join(upper, "only-bottom"), "utf8")).toBe("b\nmore\n");
    expect(readFileSync(join(lowers[1]!, "only-bottom"), "utf8")).toBe("b\n");
    expect(readFileSync(join(mnt, "only-bottom"), "utf8")).toBe("b\nmore\n");
  });

  test("unlink and rmdir of lower entries leave whiteouts; a recreated directory is opaque", async () => {
    const { mnt, upper, lowers } = await mountUnion(([top, bottom]) => {
      writeFileSync(join(top!, "file"), "x");
      mkdirSync(join(bottom!, "dir/sub"), { recursive: true });
      writeFileSync(join(bottom!, "dir/old"), "old");
    });
    unlinkSync(join(mnt, "file"));
    expect(existsSync(join(mnt, "file"))).toBe(false);
    expect(isWhiteout(join(upper, "file"))).toBe(true);
    expect(() => rmdirSync(join(mnt, "dir"))).toThrow(/ENOTEMPTY/);
    unlinkSync(join(mnt, "dir/old"));
    rmdirSync(join(mnt, "dir/sub"));
    rmdirSync(join(mnt, "dir"));
    expect(readdirSync(mnt)).toEqual([]);
    expect(isWhiteout(join(upper, "dir"))).toBe(true);
    mkdirSync(join(mnt, "dir"));
    expect(readdirSync(join(mnt, "dir"))).toEqual([]);
    expect(opaque(join(upper, "dir"))).toBe(true);
    // Our marks stay ours.
    expect(typeof libc.listxattr(join(mnt, "dir"), 0)).toBe("number");
    expect(libc.listxattr(join(mnt, "dir"), 0)).toBe(0);
    expect(existsSync(join(lowers[1]!, "dir/old"))).toBe(true);
    // A file created where a whiteout was shows, and deleting it again whites it out again.
    writeFileSync(join(mnt, "file"), "again");
    expect(readFileSync(join(mnt, "file"), "utf8")).toBe("again");
    unlinkSync(join(mnt, "file"));
    expect(isWhiteout(join(upper, "file"))).toBe(true);
    expect(existsSync(join(mnt, "file"))).toBe(false);
  });

  test("an opaque directory in an upper layer hides the lower one's contents", async () => {
    const { mnt } = await mountUnion(([top, bottom]) => {
      mkdirSync(join(top!, "d"));
      libc.setxattr(join(top!, "d"), "user.overlay.opaque", Buffer.from("y"), 0);
      writeFileSync(join(top!, "d/new"), "");
      mkdirSync(join(bottom!, "d"));
      writeFileSync(join(bottom!, "d/hidden"), "");
    });
    expect(readdirSync(join(mnt, "d"))).toEqual(["new"]);
    expect(existsSync(join(mnt, "d/hidden"))).toBe(false);
  });

  test("rename: files from any layer, replacing, a whiteout left behind; lower directories answer EXDEV", async () => {
    const { mnt, upper } = await mountUnion(([top]) => {
      writeFileSync(join(top!, "a"), "a");
      writeFileSync(join(top!, "b"), "b");
      mkdirSync(join(top!, "lowdir"));
    });
    renameSync(join(mnt, "a"), join(mnt, "renamed"));
    expect(readFileSync(join(mnt, "renamed"), "utf8")).toBe("a");
    expect(isWhiteout(join(upper, "a"))).toBe(true);
    renameSync(join(mnt, "renamed"), join(mnt, "b"));
    expect(readFileSync(join(mnt, "b"), "utf8")).toBe("a");
    expect(readdirSync(mnt).sort()).toEqual(["b", "lowdir"]);
    expect(() => renameSync(join(mnt, "lowdir"), join(mnt, "moved"))).toThrow(/EXDEV/);
    // mv copes with EXDEV by copying.
    expect(sh("mv lowdir moved && ls", mnt).stdout.toString()).toBe("b\nmoved\n");
    mkdirSync(join(mnt, "updir"));
    writeFileSync(join(mnt, "updir/f"), "f");
    renameSync(join(mnt, "updir"), join(mnt, "updir2"));
    expect(readFileSync(join(mnt, "updir2/f"), "utf8")).toBe("f");
  });

  test("symlinks, hard links, fifos, chmod, chown where allowed, truncate, utimes with nanoseconds", async () => {
    const { mnt, upper } = await mountUnion(([top]) => writeFileSync(join(top!, "data"), "0123456789"));
    symlinkSync("data", join(mnt, "link"));
    expect(readlinkSync(join(mnt, "link"))).toBe("data");
    expect(readFileSync(join(mnt, "link"), "utf8")).toBe("0123456789");
    linkSync(join(mnt, "data"), join(mnt, "hard"));
    expect(statSync(join(mnt, "hard")).nlink).toBe(2);
    expect(statSync(join(mnt, "hard")).ino).toBe(statSync(join(mnt, "data")).ino);
    expect(sh("mkfifo pipe && test -p pipe", mnt).exitCode).toBe(0);
    expect(lstatSync(join(upper, "pipe")).isFIFO()).toBe(true);
    chmodSync(join(mnt, "data"), 0o640);
    expect(statSync(join(mnt, "data")).mode & 0o7777).toBe(0o640);
    chownSync(join(mnt, "data"), uid, process.getgid!());
    if (uid !== 0) expect(() => chownSync(join(mnt, "data"), 0, 0)).toThrow(/EPERM/);
    truncateSync(join(mnt, "data"), 4);
    expect(readFileSync(join(mnt, "data"), "utf8")).toBe("0123");
    expect(sh("touch -d '2001-02-03 04:05:06.123456789 UTC' data && stat -c %y data", mnt).stdout.toString()).toStartWith("2001-02-03 04:05:06.123456789");
    expect(sh("stat -c %y data", upper).stdout.toString()).toStartWith("2001-02-03 04:05:06.123456789");
  });

  test.if(uid === 0)("a device node from a layer keeps its numbers when copied up (root only: mknod)", async () => {
    const { mnt, upper } = await mountUnion(([top]) => expect(sh("mknod null c 1 3", top!).exitCode).toBe(0));
    chmodSync(join(mnt, "null"), 0o600);
    const copied = lstatSync(join(upper, "null"));
    expect([copied.isCharacterDevice(), copied.rdev, copied.mode & 0o777]).toEqual([true, lstatSync("/dev/null").rdev, 0o600]);
    expect(lstatSync(join(mnt, "null")).rdev).toBe(lstatSync("/dev/null").rdev);
  });

  test("an open file keeps working after its name is gone", async () => {
    const { mnt } = await mountUnion(() => {});
    writeFileSync(join(mnt, "open"), "still here");
    const fd = openSync(join(mnt, "open"), "r+");
    try {
      unlinkSync(join(mnt, "open"));
      expect(existsSync(join(mnt, "open"))).toBe(false);
      expect(fstatSync(fd).size).toBe(10);
      const buffer = Buffer.alloc(10);
      expect(readSync(fd, buffer, 0, 10, 0)).toBe(10);
      expect(buffer.toString()).toBe("still here");
    } finally {
      closeSync(fd);
    }
  });

  test("extended attributes are kept, copied up with the file, and removable", async () => {
    const { mnt, upper } = await mountUnion(([top]) => {
      writeFileSync(join(top!, "f"), "x");
      libc.setxattr(join(top!, "f"), "user.origin", Buffer.from("lower"), 0);
    });
    expect(String(libc.getxattr(join(mnt, "f"), "user.origin", 64))).toBe("lower");
    libc.setxattr(join(mnt, "f"), "user.mine", Buffer.from("value"), 0);
    expect(String(libc.getxattr(upper + "/f", "user.origin", 64))).toBe("lower");
    expect(String(libc.listxattr(join(mnt, "f"), 1024)).split("\0").filter(Boolean).sort()).toEqual(["user.mine", "user.origin"]);
    libc.removexattr(join(mnt, "f"), "user.mine");
    expect(() => libc.getxattr(join(mnt, "f"), "user.mine", 64)).toThrow();
  });

  test("large files: written and read back intact, and copied up whole", async () => {
    const big = Buffer.alloc(48 << 20);
    for (let i = 0; i < big.length; i += 4096) big.writeUInt32LE(i * 2654435761 >>> 0, i);
    const { mnt, upper } = await mountUnion(([top]) => writeFileSync(join(top!, "lower.bin"), big));
    const hash = (data: Buffer) => createHash("sha256").update(data).digest("hex");
    writeFileSync(join(mnt, "new.bin"), big);
    expect(hash(readFileSync(join(mnt, "new.bin")))).toBe(hash(big));
    appendFileSync(join(mnt, "lower.bin"), "tail");
    expect(statSync(join(upper, "lower.bin")).size).toBe(big.length + 4);
    expect(hash(readFileSync(join(mnt, "lower.bin")).subarray(0, big.length))).toBe(hash(big));
  });

  test("names that are not UTF-8 survive, from a lower layer and created through the mount", async () => {
    const lowerName = Buffer.from([0x6c, 0xe9, 0x2e, 0x74, 0x78, 0x74]); // "lé.txt" in Latin-1
    const newName = Buffer.from([0x6e, 0xff, 0xfe]);
    const { mnt, upper } = await mountUnion(([top]) => writeFileSync(Buffer.concat([Buffer.from(`${top}/`), lowerName]), "latin1"), { casefold: true });
    const listed = readdirSync(mnt, { encoding: "buffer" }) as Buffer[];
    expect(listed.map((name) => name.toString("hex"))).toEqual([lowerName.toString("hex")]);
    expect(readFileSync(Buffer.concat([Buffer.from(`${mnt}/`), lowerName]), "utf8")).toBe("latin1");
    writeFileSync(Buffer.concat([Buffer.from(`${mnt}/`), newName]), "raw");
    expect((readdirSync(upper, { encoding: "buffer" }) as Buffer[]).map((name) => name.toString("hex"))).toEqual([newName.toString("hex")]);
    // Different invalid bytes are different names, even with casefold.
    expect(existsSync(Buffer.concat([Buffer.from(`${mnt}/`), Buffer.from([0x6e, 0xfe, 0xff])]))).toBe(false);
  });

  test("a real shell and coreutils run from the mount", async () => {
    const { mnt } = await mountUnion(([top]) => {
      mkdirSync(join(top!, "bin"));
      for (const program of ["bash", "ls", "cat", "sort"]) copyFileSync(Bun.which(program)!, join(top!, "bin", program));
      for (const program of ["bash", "ls", "cat", "sort"]) chmodSync(join(top!, "bin", program), 0o755);
      writeFileSync(join(top!, "words"), "b\na\nc\n");
    });
    const result = spawnSync([join(mnt, "bin/bash"), "-c", `cd ${mnt} && bin/ls bin && bin/sort words | bin/cat`], { stdout: "pipe", stderr: "pipe" });
    expect(result.stderr.toString()).toBe("");
    expect(result.stdout.toString()).toBe("bash\ncat\nls\nsort\na\nb\nc\n");
  });
});

describe("against a plain directory", () => {
  /** Type, mode, contents or target of every entry below `root`, sorted. */
  function snapshot(root: string): string[] {
    const out: string[] = [];
    const walk = (relative: string) => {
      for (const name of readdirSync(join(root, relative)).sort()) {
        const path = relative ? `${relative}/${name}` : name;
        const stat = lstatSync(join(root, path));
        const mode = (stat.mode & 0o7777).toString(8);
        if (stat.isDirectory()) {
          out.push(`${path}/ ${mode}`);
          walk(path);
        } else if (stat.isSymbolicLink()) out.push(`${path} -> ${readlinkSync(join(root, path))}`);
        else out.push(`${path} ${mode} ${readFileSync(join(root, path), "utf8")}`);
      }
    };
    walk("");
    return out;
  }

  test("500 random changes give the same tree as on a plain copy, and the same after a remount", async () => {
    const layout = (top: string, bottom: string) => {
      for (const [path, content] of Object.entries({ "a/x": "bottom-x", "a/b/y": "bottom-y", "c/z": "bottom-z", "t": "bottom-t" })) {
        mkdirSync(join(bottom, path, ".."), { recursive: true });
        writeFileSync(join(bottom, path), content);
      }
      for (const [path, content] of Object.entries({ "a/x": "top-x", "a/w": "top-w", "d/v": "top-v" })) {
        mkdirSync(join(top, path, ".."), { recursive: true });
        writeFileSync(join(top, path), content);
      }
    };
    const first = await mountUnion(([top, bottom]) => layout(top!, bottom!));
    const plain = join(first.dir, "plain");
    mkdirSync(plain);
    layout(plain, plain);
    // The plain copy holds the merged view: the top layer's files win.
    writeFileSync(join(plain, "a/x"), "top-x");
    expect(snapshot(first.mnt)).toEqual(snapshot(plain));

    let seed = Number(process.env.FIM_TEST_SEED ?? 12345); // another seed: FIM_TEST_SEED=n
    const random = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const names = ["a", "a/x", "a/b", "a/b/y", "a/w", "c", "c/z", "d", "d/v", "t", "n", "a/n", "c/m", "d/e", "d/e/f"];
    const pick = () => names[random(names.length)]!;
    const outcome = (action: () => void): string => {
      try {
        action();
        return "ok";
      } catch (error) {
        return (error as NodeJS.ErrnoException).code ?? String(error);
      }
    };
    const operations: ((root: string, a: string, b: string, n: number) => void)[] = [
      (root, a, _b, n) => writeFileSync(join(root, a), `w${n}`),
      (root, a, _b, n) => appendFileSync(join(root, a), `+${n}`),
      (root, a) => unlinkSync(join(root, a)),
      (root, a) => mkdirSync(join(root, a)),
      (root, a) => rmdirSync(join(root, a)),
      (root, a, b) => renameSync(join(root, a), join(root, b)),
      (root, a, _b, n) => symlinkSync(`target${n}`, join(root, a)),
      // Modes that keep the owner's access: which error comes first otherwise differs by filesystem.
      (root, a, _b, n) => chmodSync(join(root, a), [0o700, 0o755, 0o750][n % 3]!),
      (root, a, _b, n) => truncateSync(join(root, a), n % 3),
    ];
    let changes = 0;
    for (let n = 0; n < 500; n++) {
      const operation = operations[random(operations.length)]!;
      const [a, b] = [pick(), pick()];
      const union = outcome(() => operation(first.mnt, a, b, n));
      // Moving a directory that has parts in a layer is refused (EXDEV), as by the kernel overlay.
      if (union === "EXDEV") continue;
      const expected = outcome(() => operation(plain, a, b, n));
      expect(`${n}: ${union}`).toBe(`${n}: ${expected}`);
      if (union === "ok") changes++;
    }
    // Most random operations fail (no such name, not empty…); enough of them must not.
    expect(changes).toBeGreaterThan(150);
    const final = snapshot(plain);
    expect(snapshot(first.mnt)).toEqual(final);

    // The upper directory alone (whiteouts, opaque marks) gives the same tree to a new server.
    const { upper, lowers, dir } = first;
    spawnSync(["fusermount3", "-u", first.mnt]);
    await first.server.exited;
    const request = { mountpoint: first.mnt, upper, lowers, work: join(dir, "work"), casefold: false, mount: "fusermount", janitor: JANITOR, ttl: 1 };
    const second = spawn([process.execPath, SERVER, JSON.stringify(request)], { stdout: "pipe", stderr: "pipe" });
    current = { ...first, server: second };
    const reader = second.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    reader.releaseLock();
    expect(snapshot(first.mnt)).toEqual(final);
  });
});

describe("casefold", () => {
  test("case-insensitive lookup, exact name first: names with capitals in lower layers stay visible", async () => {
    const { mnt } = await mountUnion(([top, bottom]) => {
      mkdirSync(join(top!, "Windows/System32"), { recursive: true });
      writeFileSync(join(top!, "Windows/System32/KERNEL32.dll"), "k");
      writeFileSync(join(top!, "README"), "upper-case");
      writeFileSync(join(bottom!, "readme"), "lower-case");
    }, { casefold: true });
    expect(readdirSync(mnt).sort()).toEqual(["README", "Windows", "readme"]);
    expect(readFileSync(join(mnt, "windows/system32/kernel32.DLL"), "utf8")).toBe("k");
    expect(readFileSync(join(mnt, "README"), "utf8")).toBe("upper-case");
    expect(readFileSync(join(mnt, "readme"), "utf8")).toBe("lower-case");
  });

  test("creation preserves case and reuses a twin; case-only renames; the reference's check", async () => {
    const { mnt, upper } = await mountUnion(() => {}, { casefold: true });
    expect(sh("mkdir -p hElLo/WoRlD && stat -c %n hello/world hEllO/WorlD && rmdir hello/world && test ! -e HELLO/WORLD", mnt).stdout.toString()).toBe("hello/world\nhEllO/WorlD\n");
    writeFileSync(join(mnt, "MixedCase.txt"), "1");
    writeFileSync(join(mnt, "mixedcase.TXT"), "2");
    expect(readdirSync(upper).sort()).toEqual(["MixedCase.txt", "hElLo"]);
    expect(readFileSync(join(mnt, "MIXEDCASE.txt"), "utf8")).toBe("2");
    expect(() => mkdirSync(join(mnt, "HELLO"))).toThrow(/EEXIST/);
    renameSync(join(mnt, "mixedcase.txt"), join(mnt, "MIXEDCASE.TXT"));
    expect(readdirSync(mnt).sort()).toEqual(["MIXEDCASE.TXT", "hElLo"]);
    writeFileSync(join(mnt, "other"), "3");
    renameSync(join(mnt, "other"), join(mnt, "mixedcase.txt"));
    expect(readdirSync(mnt).sort()).toEqual(["MIXEDCASE.TXT", "hElLo"]);
    expect(readFileSync(join(mnt, "MIXEDCASE.TXT"), "utf8")).toBe("3");
  });
});

describe("mounting and unmounting", () => {
  test("unmounting ends the server cleanly", async () => {
    const { mnt, server } = await mountUnion(() => {});
    expect(mounted(mnt)).toBe(true);
    expect(spawnSync(["fusermount3", "-u", mnt]).exitCode).toBe(0);
    expect(await server.exited).toBe(0);
    expect(mounted(mnt)).toBe(false);
  });

  test("the library's unmount() undoes its own fusermount3 mount", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fim-unionfs-"));
    try {
      const handle = await mountWithFusermount(dir, { source: "fim-test", subtype: "fim-test" });
      expect(mounted(dir)).toBe(true);
      handle.unmount();
      closeSync(handle.fd);
      expect(mounted(dir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test.if(uid === 0)("mount(2) and umount2 where we may mount (root here; runs use a user namespace)", () => {
    const dir = mkdtempSync(join(tmpdir(), "fim-unionfs-"));
    try {
      const handle = mountDirect(dir, { source: "fim-test", subtype: "fim-test" });
      expect(mounted(dir)).toBe(true);
      handle.unmount();
      closeSync(handle.fd);
      expect(mounted(dir)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a killed server leaves no mount behind (its janitor unmounts)", async () => {
    const { mnt, server } = await mountUnion(() => {});
    expect(mounted(mnt)).toBe(true);
    server.kill("SIGKILL");
    await server.exited;
    for (let i = 0; i < 50 && mounted(mnt); i++) await Bun.sleep(50);
    expect(mounted(mnt)).toBe(false);
  });

  test("a mount that fusermount3 refuses is reported with its reason", async () => {
    const dir = mkdtempSync(join(tmpdir(), "fim-unionfs-"));
    try {
      const request = { mountpoint: join(dir, "missing"), upper: dir, lowers: [], casefold: false, mount: "fusermount", janitor: JANITOR, ttl: 1 };
      const result = spawnSync([process.execPath, SERVER, JSON.stringify(request)], { stdout: "pipe", stderr: "pipe" });
      expect(result.exitCode).not.toBe(0);
      expect(result.stderr.toString()).toContain("fusermount3 could not mount");
      expect(result.stdout.toString()).toBe("");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
