// Helpers for the boot stub's tests: private runtime directories, copies of an image under
// another build id, damaged parts, and a root filesystem without glibc to run images in.
import { spawnSync } from "bun";
import { chmodSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { HEADER_PREFIX, headerBytes, Image } from "../../core/image.ts";
import { ROOT } from "./image.ts";

export const TOOLS = join(ROOT, "toolset/out/x86_64/bin");
export const BWRAP = join(TOOLS, "bwrap");

/** A directory usable as $XDG_RUNTIME_DIR (ours, 0700): the stub extracts there, away from every other test. */
export function privateRuntimeDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), "fim-xdg-"));
  chmodSync(dir, 0o700);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The build's directory the stub chose, from its debug trace. */
export function runtimeDirOf(stdout: string): string | undefined {
  return /^D::boot::\d+::Runtime directory: '([^']+)'/m.exec(stdout)?.[1];
}

/**
 * A copy of `source` whose build id differs (same length, in the header's JSON and the boot
 * table), so that it is extracted as another build without building another image.
 */
export function withBuildId(source: string, target: string, suffix: string): string {
  const image = Image.open(source);
  const old = image.header.buildId;
  const id = `${old.slice(0, old.length - suffix.length)}${suffix}`;
  copyFileSync(source, target);
  chmodSync(target, 0o755);
  const start = image.stubSize;
  const end = image.header.boot.table.offset + image.header.boot.table.size;
  const fd = openSync(target, "r+");
  try {
    const head = Buffer.alloc(end - start);
    readSync(fd, head, 0, head.length, start);
    const from = Buffer.from(old);
    for (let at = head.indexOf(from); at >= 0; at = head.indexOf(from, at + 1)) writeSync(fd, Buffer.from(id), 0, id.length, start + at);
    // The header again with its new bytes' digest (the launcher refuses one that differs from it).
    const json = Buffer.alloc(head.readUInt32LE(8));
    readSync(fd, json, 0, json.length, start + HEADER_PREFIX);
    const header = headerBytes(json.toString());
    writeSync(fd, header, 0, header.length, start);
  } finally {
    closeSync(fd);
  }
  return id;
}

/** Flips a byte in the middle of a stored part (a boot part's path, or a tool's name). */
export function damage(path: string, part: string): void {
  const { header } = Image.open(path);
  const record = header.boot.parts.find((p) => p.path === part) ?? header.tools.find((t) => t.name === part);
  if (!record) throw new Error(`no part '${part}' in ${path}`);
  const at = record.offset + Math.floor(record.size / 2);
  const fd = openSync(path, "r+");
  try {
    const byte = Buffer.alloc(1);
    readSync(fd, byte, 0, 1, at);
    byte[0] = byte[0]! ^ 0xff;
    writeSync(fd, byte, 0, 1, at);
  } finally {
    closeSync(fd);
  }
}

export interface Root {
  dir: string;
  /** Runs a shell script in the root (pivoted into by bwrap), as this user; returns its result. */
  run(script: string, env?: Record<string, string>): { code: number; stdout: string; stderr: string };
  cleanup(): void;
}

/**
 * A root filesystem with no glibc: a static busybox (and, with `musl`, musl's loader and a
 * program linked against it, like Alpine), the image, /etc/passwd and a home. bwrap pivots
 * into it (in a chroot, the kernel refuses to create user namespaces); /tmp is a new tmpfs,
 * so the runtime is extracted from scratch.
 */
export function noGlibcRoot(image: string, options: { musl?: boolean } = {}): Root {
  const dir = mkdtempSync(join(tmpdir(), "fim-root-"));
  chmodSync(dir, 0o755);
  for (const sub of ["bin", "etc", "proc", "sys", "dev", "tmp", "lib"]) mkdirSync(join(dir, sub), { recursive: true });
  copyFileSync(join(TOOLS, "busybox"), join(dir, "bin/busybox"));
  chmodSync(join(dir, "bin/busybox"), 0o755);
  const applets = spawnSync([join(dir, "bin/busybox"), "--list"]).stdout.toString().split("\n").filter((name) => /^[a-z0-9_.[-]+$/.test(name));
  for (const applet of applets) if (applet !== "busybox") symlinkSync("busybox", join(dir, "bin", applet));
  // A glibc program, to show that this root cannot run one.
  copyFileSync("/usr/bin/true", join(dir, "bin/glibc-true"));
  chmodSync(join(dir, "bin/glibc-true"), 0o755);
  if (options.musl) {
    copyFileSync("/lib/ld-musl-x86_64.so.1", join(dir, "lib/ld-musl-x86_64.so.1"));
    writeFileSync(join(dir, "hello.c"), '#include <stdio.h>\nint main(void) { puts("hello from musl"); return 0; }\n');
    const built = spawnSync(["musl-gcc", "-o", join(dir, "bin/musl-hello"), join(dir, "hello.c")], { stderr: "pipe" });
    if (built.exitCode !== 0) throw new Error(`musl-gcc failed (install musl-tools): ${built.stderr.toString()}`);
  }
  const user = userInfo();
  const home = user.uid === 0 ? "/root" : `/home/${user.username}`;
  mkdirSync(join(dir, home), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, "etc/passwd"), `root:x:0:0:root:/root:/bin/sh\n${user.uid === 0 ? "" : `${user.username}:x:${user.uid}:${user.gid}::${home}:/bin/sh\n`}`);
  writeFileSync(join(dir, "etc/group"), `root:x:0:\n${user.uid === 0 ? "" : `${user.username}:x:${user.gid}:\n`}`);
  copyFileSync(image, join(dir, "app.flatimage"));
  chmodSync(join(dir, "app.flatimage"), 0o755);
  return {
    dir,
    run(script, env = {}) {
      // The host's /proc, fully visible as on a real host: the image's sandbox mounts its own.
      const argv = [BWRAP, "--bind", dir, "/", "--bind", "/proc", "/proc", "--dev", "/dev", "--dev-bind", "/dev/fuse", "/dev/fuse", "--ro-bind", "/sys", "/sys", "--tmpfs", "/tmp"];
      argv.push("--die-with-parent", "--clearenv", "--setenv", "PATH", "/bin", "--setenv", "HOME", home, "--setenv", "USER", user.username, "--chdir", "/tmp"); // a directory every guest has
      for (const [key, value] of Object.entries(env)) argv.push("--setenv", key, value);
      argv.push("--", "/bin/sh", "-c", script);
      const result = spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
      return { code: result.exitCode ?? 128, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
    },
    cleanup() {
      spawnSync(["chmod", "-R", "u+rwx", dir], { stderr: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every `*.tmp` below a directory. */
export function temporaries(dir: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    let names: string[];
    try {
      names = readdirSync(path);
    } catch {
      return;
    }
    for (const name of names) {
      if (name.endsWith(".tmp")) found.push(join(path, name));
      walk(join(path, name));
    }
  };
  walk(dir);
  return found;
}

export const readText = (path: string) => readFileSync(path, "utf8");
