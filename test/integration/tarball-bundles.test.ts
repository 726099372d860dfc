// alpine and arch are built from their official root-filesystem tarballs, whose mirrors are
// unreachable here: the pipeline is exercised with locally made tarballs of the same shape
// (FIM_ROOTFS_TARBALL), and failures with a bad tarball and a refused download.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UPSTREAM_REMOTE } from "../../plugins/remote/index.ts";
import { freshImage, ROOT } from "../helpers/image.ts";

let work: string;
const busybox = join(ROOT, "toolset/out/x86_64/bin/busybox");

function tarball(name: string, files: Record<string, string>, prefix: string, compression: string): string {
  const tree = join(work, `${name}.tree`);
  const top = join(tree, prefix);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(top, path, ".."), { recursive: true });
    writeFileSync(join(top, path), content);
  }
  mkdirSync(join(top, "bin"), { recursive: true });
  copyFileSync(busybox, join(top, "bin/busybox"));
  symlinkSync("busybox", join(top, "bin/sh"));
  const out = join(work, `${name}.tar.${compression}`);
  // Like the real ones: alpine's entries start with ./, arch's with root.x86_64/.
  const made = Bun.spawnSync(["tar", compression === "zst" ? "--zstd" : "-z", "-cf", out, "-C", tree, prefix], { stderr: "pipe" });
  if (made.exitCode !== 0) throw new Error(`tar: ${made.stderr.toString()} (is zstd installed? apt-get install zstd)`);
  return out;
}

function build(bundle: string, source: string, out: string) {
  return Bun.spawnSync([process.execPath, join(ROOT, "scripts/build.ts"), bundle, "--out", out], {
    env: { ...process.env, FIM_ROOTFS_TARBALL: source },
    stdout: "pipe",
    stderr: "pipe",
  });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "fim-tarballs-"));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe("tarball bundles", () => {
  test("alpine: minirootfs layout, apk repositories set, reports ALPINE", () => {
    const source = tarball("alpine", { "etc/alpine-release": "3.22.2\n", "etc/apk/world": "alpine-base\n" }, ".", "gz");
    const out = join(work, "alpine.flatimage");
    const result = build("alpine", source, out);
    expect(result.exitCode).toBe(0);
    expect(result.stderr.toString()).toContain("root filesystem of 'alpine': extracting");
    const image = freshImage(out);
    try {
      expect(image.run(["fim-exec", "cat", "/etc/alpine-release"]).stdout).toBe("3.22.2\n");
      expect(image.run(["fim-exec", "cat", "/etc/apk/repositories"]).stdout).toBe("https://dl-cdn.alpinelinux.org/alpine/v3.22/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.22/community\n");
      expect(JSON.parse(image.run(["fim-version", "full"]).stdout).DISTRIBUTION).toBe("ALPINE");
      // Upstream's recipes exist for alpine: its remote is preset at build time.
      expect(image.run(["fim-remote", "show"])).toEqual({ code: 0, stdout: `${UPSTREAM_REMOTE}\n`, stderr: "" });
      // No glibc locale data in this root: the shell that starts the guest still says nothing.
      expect(image.run(["fim-exec", "true"], { env: { LC_ALL: "C.UTF-8" } })).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(image.run(["fim-exec", "sh", "-c", "test -d /fim/config && test -f /etc/resolv.conf && echo base"]).stdout).toBe("base\n");
    } finally {
      image.cleanup();
    }
  }, 120_000);

  test("arch: bootstrap layout (root.x86_64/, zstd), mirror and multilib, reports ARCH", () => {
    const pacman = "[options]\nArchitecture = auto\n\n#[multilib]\n#Include = /etc/pacman.d/mirrorlist\n";
    const source = tarball("arch", { "etc/arch-release": "", "etc/pacman.conf": pacman, "etc/pacman.d/mirrorlist": "#Server = x\n" }, "root.x86_64", "zst");
    const out = join(work, "arch.flatimage");
    expect(build("arch", source, out).exitCode).toBe(0);
    const image = freshImage(out);
    try {
      expect(image.run(["fim-exec", "cat", "/etc/pacman.d/mirrorlist"]).stdout).toBe("Server = https://geo.mirror.pkgbuild.com/$repo/os/$arch\n");
      expect(image.run(["fim-exec", "cat", "/etc/pacman.conf"]).stdout).toContain("\n[multilib]\nInclude = /etc/pacman.d/mirrorlist\n");
      expect(JSON.parse(image.run(["fim-version", "full"]).stdout).DISTRIBUTION).toBe("ARCH");
      expect(image.run(["fim-remote", "show"])).toEqual({ code: 0, stdout: `${UPSTREAM_REMOTE}\n`, stderr: "" });
    } finally {
      image.cleanup();
    }
  }, 120_000);

  test("a bad tarball or a failed download: the failed step and why, and no file written", () => {
    const junk = join(work, "junk.tar.gz");
    writeFileSync(junk, "not a tarball");
    const out = join(work, "bad.flatimage");
    const bad = build("alpine", junk, out);
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr.toString()).toContain("building the root filesystem of 'alpine' failed: step 'extract': tar failed on");
    expect(bad.stderr.toString()).not.toContain("    at ");
    const refused = build("alpine", "http://127.0.0.1:9/alpine.tar.gz", out);
    expect(refused.exitCode).not.toBe(0);
    expect(refused.stderr.toString()).toContain("step 'download': could not fetch http://127.0.0.1:9/alpine.tar.gz");
    const wrongShape = build("arch", tarball("notarch", { "etc/os-release": "x" }, "root.x86_64", "zst"), out);
    expect(wrongShape.stderr.toString()).toContain("is not an Arch Linux bootstrap tree (no root.x86_64/etc/arch-release)");
    expect(existsSync(out)).toBe(false);
  }, 120_000);
});
