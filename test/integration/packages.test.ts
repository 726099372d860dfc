// Packaging real applications (issue 16): as the user running the tests (scripts/test.sh runs
// them as root and as the regular user fimtest), `fim-root` installs Debian packages that
// chown files to other users and groups or create system users (the seccomp filter makes
// ownership changes succeed without effect), the programs then run, a commit stores the
// files as root, and a packaged X11 program shows a real window under Xvfb with each overlay
// type and casefold. One image and one apt-get run (~30 MB from
// deb.debian.org) serve the whole file.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { debianImage, succeeded } from "../helpers/debian.ts";
import { freshImage, type TestImage } from "../helpers/image.ts";
import { screenshot, startXvfb, windowId, windowTree, xTools, type XServer } from "../helpers/xvfb.ts";

/** Programs whose packages chown to other owners (xterm's utempter: root:utmp; man-db's cache: man) or add users (dbus: messagebus, uuid-runtime: uuidd). */
const PACKAGES = ["xterm", "fontconfig", "git", "x11-apps", "tmux", "dbus", "uuid-runtime"];
/** Its script adds `mdns4_minimal` to /etc/nsswitch.conf, which the network permission binds for other runs. */
const NSS_MODULE = "libnss-mdns";
const NETWORK_TIMEOUT = 300_000;
/** setgid root:utmp in Debian's utempter package: dpkg chowns it to a group that is not mapped. */
const UTEMPTER = "/usr/lib/x86_64-linux-gnu/utempter/utempter";

let debian: ReturnType<typeof debianImage>;
let image: TestImage;
const uid = process.getuid!();
const gid = process.getgid!();

beforeAll(() => {
  xTools(); // fail early, with what to install, rather than after the downloads
  debian = debianImage();
  image = freshImage(debian.path);
}, 900_000);

afterAll(() => {
  image?.cleanup();
  debian?.cleanup();
});

const data = () => join(image.dir, ".app.flatimage.data/root");

describe("fim-root installs Debian packages in the single-uid sandbox", () => {
  test(
    "packages that chown to other users and groups and create system users install without workarounds",
    () => {
      succeeded(image.run(["fim-perms", "add", "network"]), "fim-perms add network");
      const apt = succeeded(
        image.run([
          "fim-root",
          "sh",
          "-c",
          `apt-get -o Acquire::Retries=3 update && apt-get -o Acquire::Retries=3 install -y ${PACKAGES.join(" ")} && apt-get -o Acquire::Retries=3 install -y --no-install-recommends ${NSS_MODULE}`,
        ]),
        `apt-get install ${PACKAGES.join(" ")} ${NSS_MODULE}`,
      );
      for (const name of [...PACKAGES, NSS_MODULE]) expect(apt.stdout).toContain(`Setting up ${name}`);
      const output = `${apt.stdout}\n${apt.stderr}`;
      expect(output).not.toMatch(/^E: |error setting ownership|Invalid argument/m);
      // Every package is configured: no half-installed or unconfigured one is left.
      expect(succeeded(image.run(["fim-root", "dpkg", "--audit"]), "dpkg --audit").stdout).toBe("");
    },
    NETWORK_TIMEOUT,
  );

  test("the system users exist, the NSS module is in the image's nsswitch.conf, and the programs run", () => {
    const users = succeeded(image.run(["fim-root", "sh", "-c", "id messagebus && id uuidd && getent group utmp"]), "id messagebus");
    expect(users.stdout).toMatch(/^uid=\d+\(messagebus\) gid=\d+\(messagebus\)/m);
    expect(users.stdout).toMatch(/^uid=\d+\(uuidd\) gid=\d+\(uuidd\)/m);
    expect(image.run(["fim-root", "grep", "^hosts:", "/etc/nsswitch.conf"]).stdout).toContain("mdns4_minimal");
    expect(succeeded(image.run(["fim-exec", "git", "--version"]), "git --version").stdout).toMatch(/^git version 2\.\d+/);
    const repository = image.run(["fim-exec", "sh", "-c", "git init -q /tmp/r && cd /tmp/r && git -c user.name=t -c user.email=t@example.org commit -q --allow-empty -m first && git log --format=%s"]);
    expect(repository).toEqual({ code: 0, stdout: "first\n", stderr: "" });
    expect(succeeded(image.run(["fim-exec", "tmux", "-V"]), "tmux -V").stdout).toMatch(/^tmux \d/);
    // A real tmux server on a pseudo-terminal: a session is created, listed and ended.
    const tmux = image.run(["fim-exec", "sh", "-c", "tmux -S /tmp/s -f /dev/null new-session -d -s packaged 'exec sleep 60' && tmux -S /tmp/s list-sessions -F '#{session_name}' && tmux -S /tmp/s kill-server"]);
    expect(tmux).toEqual({ code: 0, stdout: "packaged\n", stderr: "" });
    expect(succeeded(image.run(["fim-exec", "sh", "-c", "fc-list : family | sort -u"]), "fc-list").stdout).toContain("DejaVu Sans Mono");
    expect(succeeded(image.run(["fim-exec", "dbus-daemon", "--version"]), "dbus-daemon --version").stdout).toMatch(/^D-Bus Message Bus Daemon \d/);
    expect(succeeded(image.run(["fim-exec", "uuidgen"]), "uuidgen").stdout).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-/);
  });

  test("installed files are the user's; a commit stores them as root, which a run shows as the user", () => {
    // dpkg set utempter to root:utmp 2755: the chown did nothing, the mode stayed.
    const upper = statSync(join(data(), UTEMPTER));
    expect([upper.uid, upper.gid, upper.mode & 0o7777]).toEqual([uid, gid, 0o2755]);
    expect(image.run(["fim-root", "stat", "-c", "%u:%g %a", UTEMPTER]).stdout).toBe("0:0 2755\n");

    // D and I lines go to stdout.
    const debug = image.run(["fim-root", "true"], { env: { FIM_DEBUG: "1" } });
    expect(debug.stdout).toMatch(/^D::seccomp::\d+::Ownership: one uid mapped .*chown and set\*id calls succeed without effect/m);
    // A guest that is root (the host's root runs fim-exec as root) gets the same mode.
    const plain = image.run(["fim-exec", "true"], { env: { FIM_DEBUG: "1" } }).stdout;
    expect(plain).toMatch(uid === 0 ? /^D::seccomp::\d+::Ownership: one uid mapped \(the user, as root\): chown/m : /^D::seccomp::\d+::Ownership: one uid mapped \(the user\): files are the user's/m);

    succeeded(image.run(["fim-layer", "commit", "binary"]), "fim-layer commit binary");
    expect(existsSync(join(data(), UTEMPTER))).toBe(false);
    expect(image.run(["fim-root", "stat", "-c", "%u:%g %a", UTEMPTER]).stdout).toBe("0:0 2755\n");
    expect(image.run(["fim-exec", "stat", "-c", "%u:%g %a", UTEMPTER]).stdout).toBe(`${uid}:${gid} 2755\n`);
  }, 180_000);
});

// Also run by the host's root: xterm, as root, gives its pty to root:tty and exits when that
// fails (its window came and went: BadWindow); a guest that is root has ownership faked too.
describe("a packaged X11 program under Xvfb", () => {
  let dir: string;
  let server: XServer;

  // Xvfb's start can outlast bun's 5 s for a hook on a busy machine (seen once in CI).
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "fim-test-x11-"));
    server = await startXvfb(dir);
    succeeded(image.run(["fim-perms", "add", "xorg"]), "fim-perms add xorg");
    succeeded(image.run(["fim-boot", "set", "xterm", "-fa", "Mono"]), "fim-boot set xterm");
  }, 30_000);

  afterAll(async () => {
    await server?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the server refuses a client without its cookie", () => {
    const result = Bun.spawnSync([xTools().xwininfo!, "-root"], { env: { ...process.env, DISPLAY: server.display, XAUTHORITY: join(dir, "none") }, stdout: "pipe", stderr: "pipe" });
    expect(result.exitCode).not.toBe(0);
  });

  // [label, environment, how the program is started, its X resource name]
  const variants: [string, Record<string, string>, string[], string][] = [
    ["the default overlay (bwrap)", {}, [], "xterm"],
    ["the union overlay", { FIM_OVERLAY: "unionfs" }, [], "xterm"],
    // Casefold on: the program is found by a name in the wrong case.
    ["casefold", { FIM_CASEFOLD: "1" }, ["fim-exec", "/USR/BIN/XTERM", "-fa", "Mono"], "XTERM"],
  ];
  for (const [label, env, start, resource] of variants) {
    test(`xterm's window exists and is drawn, with ${label}`, async () => {
      const title = `fim-xterm-${Object.values(env).join("-") || "default"}`;
      const log = join(dir, `${title}.log`);
      const output = openSync(log, "w");
      const run = Bun.spawn([image.path, ...start, "-T", title, "-e", "sh", "-c", "echo packaged in a FlatImage; exec cat"], {
        env: { ...process.env, ...server.env, ...env },
        cwd: image.dir,
        stdin: "ignore",
        stdout: output,
        stderr: output,
      });
      closeSync(output);
      try {
        // A program that ends early fails the wait at once, with what it said.
        const ended = () => (run.exitCode === null ? undefined : `the image exited with ${run.exitCode}: ${readFileSync(log, "utf8")}`);
        const id = await until(() => windowId(windowTree(server), title), 60_000, ended);
        expect(id).toMatch(/^0x[0-9a-f]+$/);
        expect(windowTree(server)).toContain(`"${title}": ("${resource}" "XTerm")`);
        // Anti-aliased text through the image's fontconfig draws many shades; a blank window
        // has one colour (two with the cursor).
        const shot = await until(() => {
          const taken = screenshot(server, id!);
          return taken.colours >= 16 ? taken : undefined;
        }, 30_000, ended);
        expect(shot.colours).toBeGreaterThanOrEqual(16);
      } finally {
        run.kill("SIGTERM");
        await run.exited;
      }
      // The program ran from the committed layer, and wrote nothing of itself to the data directory.
      expect(existsSync(join(data(), "usr/bin/xterm"))).toBe(false);
    }, 120_000);
  }
});

/** Polls `probe` until it returns a value; throws after `ms` with what was last seen, or as soon as `abort` says why. */
async function until<T>(probe: () => T | undefined, ms: number, abort: () => string | undefined = () => undefined): Promise<T> {
  const deadline = Date.now() + ms;
  let failure: unknown;
  for (;;) {
    const reason = abort();
    if (reason !== undefined) throw new Error(reason);
    try {
      const value = probe();
      if (value !== undefined) return value;
    } catch (error) {
      failure = error;
    }
    if (Date.now() > deadline) throw new Error(`not seen within ${ms / 1000} s${failure ? `: ${failure}` : ""}`);
    await Bun.sleep(100);
  }
}
