// The debian bundle end to end, the packager's main job: install a package with apt as root
// in the sandbox, commit it into the image, make it the boot command, move the image and run
// it. Downloads from deb.debian.org. The first build of the image is slow (debootstrap, as
// root); later ones reuse the cached root filesystem layer and take seconds.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writable } from "../../scripts/rootfs.ts";
import { buildImage, freshImage, lines, ROOT, type RunResult, type TestImage } from "../helpers/image.ts";

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

  test("commit binary leaves apt's lists and caches out of the layer and in the data directory", () => {
    const upper = join(image.dir, ".app.flatimage.data/root");
    const commit = succeeded(image.run(["fim-layer", "commit", "binary"]), "fim-layer commit binary");
    const leftOut = lines(commit.stdout).find((line) => line.startsWith("I::Left out of the layer"));
    expect(leftOut).toStartWith(`I::Left out of the layer (they stay in '${upper}'): `);
    const names = leftOut!.split(": ").at(-1)!.split(", ");
    expect(names).toContain("var/lib/apt/lists");
    expect(names).toContain("var/cache/apt");
    for (const name of names) expect(["var/cache/apt", "var/cache/debconf/config.dat-old", "var/cache/debconf/templates.dat-old", "var/lib/apt/lists"]).toContain(name);
    const listed = image.run(["fim-layer", "list"]).stdout.trim().split("\n");
    expect(listed).toHaveLength(2);
    // Issue 16: 17.2 MiB with the package lists, at most ~1 MiB without.
    const size = Number(listed[1]!.split(":")[2]);
    expect(size).toBeLessThanOrEqual(1024 * 1024);
    expect(succeeded(image.run(["fim-layer", "list", "--long"]), "fim-layer list --long").stdout.split("\n")[1]).toMatch(/^1 +\d+\.\d KiB  image  \d+ entries, .*; packages: hello; /);
    // The lists stay where apt finds them: the next install needs no apt-get update.
    expect(readdirSync(join(upper, "var/lib/apt/lists")).some((name) => name.endsWith("_Packages.lz4") || name.includes("_Packages"))).toBe(true);
    expect(existsSync(join(upper, "usr/bin/hello"))).toBe(false);
    // Only what commits leave out is left: nothing to commit.
    const again = image.run(["fim-layer", "commit", "binary"]);
    expect(again.code).toBe(125);
    expect(lines(again.stderr)[0]).toStartWith(`E::Nothing to commit: '${upper}' holds only what commits leave out (`);
    const simulated = succeeded(image.run(["fim-root", "apt-get", "install", "-s", "cowsay"]), "apt-get install -s cowsay");
    expect(simulated.stdout).toContain("Inst cowsay");
  });

  test("the boot command: the moved image runs the package", () => {
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

  test("removing the package and squashing its layers makes the file smaller", () => {
    const moved = join(image.dir, "elsewhere/app.flatimage");
    const run = (args: string[]) => runAt(moved, args);
    const installed = statSync(moved).size;
    succeeded(run(["fim-root", "apt-get", "remove", "-y", "hello"]), "apt-get remove hello");
    succeeded(run(["fim-layer", "commit", "binary"]), "fim-layer commit binary");
    const removed = statSync(moved).size;
    expect(removed).toBeGreaterThan(installed); // a deletion is one more layer
    expect(run(["fim-layer", "list"]).stdout.trim().split("\n")).toHaveLength(3);
    const squash = succeeded(run(["fim-layer", "squash", "1", "2"]), "fim-layer squash 1 2");
    expect(lines(squash.stdout).at(-1)).toMatch(/^I::The image is now \d+\.\d MiB \(was \d+\.\d MiB\)$/);
    expect(run(["fim-layer", "list"]).stdout.trim().split("\n")).toHaveLength(2);
    expect(statSync(moved).size).toBeLessThan(installed);
    expect(run(["fim-exec", "sh", "-c", "command -v hello"]).code).not.toBe(0);
    expect(run(["fim-exec", "sh", "-c", "dpkg -s hello 2>&1"]).stdout).toContain("is not installed");
    expect(run(["fim-exec", "sh", "-c", "apt-get --version | head -1"]).stdout).toStartWith("apt ");
  }, NETWORK_TIMEOUT);
});
