// The debian bundle end to end, the packager's main job: install a package with apt as root
// in the sandbox, commit it into the image, make it the boot command, move the image and run
// it. Downloads from deb.debian.org. The first build of the image is slow (debootstrap, as
// root); later ones reuse the cached root filesystem layer and take seconds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writable } from "../../scripts/rootfs.ts";
import { buildImage, freshImage, ROOT, type RunResult, type TestImage } from "../helpers/image.ts";

const CACHED = join(ROOT, ".cache/test/debian.flatimage");
/** apt-get update + install of a 50 kB package: seconds, unless the archive is slow. */
const NETWORK_TIMEOUT = 240_000;

let image: TestImage;
let privateBuild: string | undefined;

/**
 * Builds the image for this run under .cache/test. A user who cannot write there (fimtest in
 * root's checkout) builds a private one from the cached layer, or else uses the one root built.
 */
function debianImage(): string {
  if (writable(dirname(CACHED))) {
    buildImage("debian", CACHED);
    return CACHED;
  }
  privateBuild = mkdtempSync(join(tmpdir(), "fim-test-debian-"));
  const out = join(privateBuild, "debian.flatimage");
  try {
    buildImage("debian", out);
    return out;
  } catch (error) {
    if (existsSync(CACHED)) return CACHED;
    throw error;
  }
}

beforeAll(() => {
  image = freshImage(debianImage());
}, 900_000);

afterAll(() => {
  image?.cleanup();
  if (privateBuild) rmSync(privateBuild, { recursive: true, force: true });
});

function runAt(path: string, args: string[]): RunResult {
  const result = spawnSync([path, ...args], { env: process.env, cwd: dirname(path), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode ?? 128, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Fails with the command's output, not just its exit code. */
function succeeded(result: RunResult, what: string): RunResult {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

describe("debian bundle", () => {
  test("is Debian 12, runs as the user, fim-root as root", () => {
    const version = succeeded(image.run(["fim-version", "full"]), "fim-version full");
    expect(JSON.parse(version.stdout).DISTRIBUTION).toBe("DEBIAN");
    expect(succeeded(image.run(["fim-exec", "cat", "/etc/debian_version"]), "cat /etc/debian_version").stdout).toMatch(/^12\.\d+\n$/);
    expect(image.run(["fim-exec", "id", "-u"]).stdout).toBe(`${process.getuid!()}\n`);
    expect(image.run(["fim-root", "id", "-u"]).stdout).toBe("0\n");
  });

  test(
    "apt-get installs a package as root in the sandbox",
    () => {
      succeeded(image.run(["fim-perms", "add", "network"]), "fim-perms add network");
      const apt = succeeded(
        image.run(["fim-root", "sh", "-c", "apt-get -o Acquire::Retries=3 update && apt-get -o Acquire::Retries=3 install -y hello"]),
        "apt-get update && apt-get install hello",
      );
      expect(apt.stdout).toContain("Setting up hello");
      // The rootfs's apt configuration keeps apt quiet in the sandbox (no chown/_apt warnings).
      expect(`${apt.stdout}\n${apt.stderr}`).not.toMatch(/^[WE]: /m);
      expect(image.run(["fim-exec", "hello"]).stdout).toBe("Hello, world!\n");
    },
    NETWORK_TIMEOUT,
  );

  test("commit binary and the boot command: the moved image runs the package", () => {
    succeeded(image.run(["fim-layer", "commit", "binary"]), "fim-layer commit binary");
    expect(image.run(["fim-layer", "list"]).stdout.trim().split("\n")).toHaveLength(2);
    succeeded(image.run(["fim-boot", "set", "hello"]), "fim-boot set hello");

    const elsewhere = join(image.dir, "elsewhere");
    mkdirSync(elsewhere);
    const moved = join(elsewhere, "app.flatimage");
    renameSync(image.path, moved);
    const result = runAt(moved, []);
    expect(result).toEqual({ code: 0, stdout: "Hello, world!\n", stderr: "" });
    // It came from the image itself, not from a data directory left next to it.
    expect(existsSync(join(elsewhere, ".app.flatimage.data/root/usr/bin/hello"))).toBe(false);
  });

  test(
    "apt and perl under the UNIONFS overlay with casefold (upstream's ciopfs hid File/Spec.pm)",
    () => {
      const moved = join(image.dir, "elsewhere/app.flatimage");
      const env = { ...process.env, FIM_OVERLAY: "unionfs", FIM_CASEFOLD: "1" };
      const run = (args: string[]): RunResult => {
        const result = spawnSync([moved, ...args], { env, cwd: dirname(moved), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
        return { code: result.exitCode ?? 128, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
      };
      const apt = succeeded(run(["fim-root", "sh", "-c", "apt-get -o Acquire::Retries=3 update && apt-get -o Acquire::Retries=3 install -y --reinstall hello"]), "apt-get install --reinstall hello");
      expect(apt.stdout).toContain("Setting up hello");
      const result = run(["fim-exec", "sh", "-c", 'HELLO && ls /USR/SHARE/DOC/Hello/copyright && perl -MFile::Spec -e "print File::Spec->catfile(qw(a b)), qq(\\n)"']);
      expect(result).toEqual({ code: 0, stdout: "Hello, world!\n/USR/SHARE/DOC/Hello/copyright\na/b\n", stderr: "" });
    },
    NETWORK_TIMEOUT,
  );
});
