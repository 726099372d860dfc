// The sandbox: overlay types, permissions, unshare options, binds, host checks, cleanup.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
let upper: string;
const root = process.getuid!() === 0;

beforeAll(() => {
  image = freshImage();
  upper = join(image.dir, ".app.flatimage.data/root");
  // A layer so that every run also mounts something.
  const src = join(image.dir, "base.src");
  mkdirSync(join(src, "etc"), { recursive: true });
  writeFileSync(join(src, "etc/base.txt"), "base\n");
  expect(image.run(["fim-layer", "create", src, join(image.dir, "base.layer")]).code).toBe(0);
  expect(image.run(["fim-layer", "add", join(image.dir, "base.layer")]).code).toBe(0);
});
afterAll(() => image.cleanup());

const sh = (script: string, env?: Record<string, string>) => image.run(["fim-exec", "sh", "-c", script], { env });

describe("overlay types", () => {
  for (const type of ["bwrap", "overlayfs"]) {
    test(`${type}: reads the layers, writes land in the data directory`, () => {
      const env = { FIM_OVERLAY: type };
      expect(image.run(["fim-overlay", "show"], { env }).stdout).toBe(`${type.toUpperCase()}\n`);
      expect(sh(`cat /etc/base.txt; echo ${type} > /etc/written-by-${type}`, env)).toMatchObject({ code: 0, stdout: "base\n" });
      expect(readFileSync(join(upper, `etc/written-by-${type}`), "utf8")).toBe(`${type}\n`);
      expect(sh(`cat /etc/written-by-${type}`, env).stdout).toBe(`${type}\n`);
      const debug = image.run(["fim-exec", "true"], { env: { ...env, FIM_DEBUG: "1" } });
      expect(lines(debug.stdout)).toContain(`D::Overlay type: ${type === "bwrap" ? "BWRAP" : "FUSE_OVERLAYFS"}`);
      expect(lines(debug.stdout).some((line) => /^D::Mounting layer from 'app.flatimage' with offset '\d+'$/.test(line))).toBe(true);
    });
  }

  test("unionfs and casefold (which needs a FUSE overlay) stack the layers with our union filesystem", () => {
    for (const env of [{ FIM_OVERLAY: "unionfs" }, { FIM_CASEFOLD: "1" }]) {
      const result = image.run(["fim-exec", "sh", "-c", "cat /etc/base.txt; echo x > /etc/unionfs-was-here; cat /etc/unionfs-was-here"], { env: { ...env, FIM_DEBUG: "1" } });
      expect(result.code).toBe(0);
      expect(result.stdout).toContain("base\nx\n");
      expect(lines(result.stdout)).toContain("D::Overlay type: UNIONFS_FUSE");
    }
  });

  test("nothing is ever written into the image by a run", () => {
    const before = statSync(image.path);
    const hash = Bun.hash(readFileSync(image.path));
    sh("echo x > /etc/new-file; rm -f /etc/base.txt");
    expect(Bun.hash(readFileSync(image.path))).toBe(hash);
    expect(statSync(image.path).mtimeMs).toBe(before.mtimeMs);
    rmSync(join(upper, "etc/base.txt"), { force: true });
  });
});

describe("permissions", () => {
  // Not under /tmp, which every guest sees.
  const home = () => {
    const dir = `/dev/shm/fim-home-${process.pid}`;
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "marker"), "home\n");
    return dir;
  };

  test("home: absent by default, the host's $HOME with the permission (not for uid 0, as upstream)", () => {
    const env = { HOME: home() };
    expect(sh('cat "$HOME/marker"', env).code).not.toBe(0);
    image.run(["fim-perms", "set", "home"]);
    const granted = sh('cat "$HOME/marker" && echo more > "$HOME/written"', env);
    if (root) expect(granted.code).not.toBe(0);
    else {
      expect(granted.stdout).toBe("home\n");
      expect(readFileSync(join(env.HOME, "written"), "utf8")).toBe("more\n");
    }
    image.run(["fim-perms", "clear"]);
    rmSync(env.HOME, { recursive: true, force: true });
  });

  test("dev: a minimal /dev by default, the host's with the permission", () => {
    expect(sh("test -e /dev/null && test -e /dev/fuse && echo fuse || echo minimal").stdout).toBe("minimal\n");
    image.run(["fim-perms", "set", "dev"]);
    expect(sh("test -e /dev/fuse && echo fuse").stdout).toBe("fuse\n");
    image.run(["fim-perms", "clear"]);
  });

  test("network: the host's resolver files, read-only", () => {
    expect(sh("cat /etc/hosts").stdout).toBe(""); // the image's own, empty bind target
    image.run(["fim-perms", "set", "network"]);
    expect(sh("cat /etc/hosts").stdout).toBe(readFileSync("/etc/hosts", "utf8"));
    expect(sh("echo x >> /etc/hosts").code).not.toBe(0);
    image.run(["fim-perms", "clear"]);
  });

  test("shm and media: host directories", () => {
    const name = `fim-test-${process.pid}`;
    writeFileSync(`/dev/shm/${name}`, "shared\n");
    try {
      expect(sh(`cat /dev/shm/${name}`).code).not.toBe(0);
      image.run(["fim-perms", "set", "shm,media"]);
      expect(sh(`cat /dev/shm/${name}`).stdout).toBe("shared\n");
      if (existsSync("/mnt")) expect(sh("test -d /mnt && echo mnt").stdout).toBe("mnt\n");
    } finally {
      rmSync(`/dev/shm/${name}`, { force: true });
      image.run(["fim-perms", "clear"]);
    }
  });

  test("audio, wayland, xorg, dbus_user: sockets from the runtime directory and their variables", () => {
    const xdg = join(image.dir, "xdg");
    mkdirSync(join(xdg, "pulse"), { recursive: true });
    for (const file of ["pulse/native", "pipewire-0", "wayland-1", "bus", "Xauthority"]) writeFileSync(join(xdg, file), file);
    const env = { XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: "wayland-1", DISPLAY: ":7", XAUTHORITY: join(xdg, "Xauthority"), DBUS_SESSION_BUS_ADDRESS: `unix:path=${xdg}/bus,guid=1` };
    const probe = 'for f in pulse/native pipewire-0 wayland-1 bus; do cat "$XDG_RUNTIME_DIR/$f" 2>/dev/null || echo "-"; echo; done; echo "$PULSE_SERVER|$WAYLAND_DISPLAY|$DISPLAY|$DBUS_SESSION_BUS_ADDRESS"; cat "$XAUTHORITY"';
    // /tmp is always shared, so put the runtime directory elsewhere to see the binds at work.
    const xdgOutside = `/dev/shm/fim-xdg-${process.pid}`;
    rmSync(xdgOutside, { recursive: true, force: true });
    require("node:fs").cpSync(xdg, xdgOutside, { recursive: true });
    try {
      const outside = { ...env, XDG_RUNTIME_DIR: xdgOutside, XAUTHORITY: `${xdgOutside}/Xauthority`, DBUS_SESSION_BUS_ADDRESS: `unix:path=${xdgOutside}/bus,guid=1` };
      expect(sh(probe, outside).stdout.split("\n").slice(0, 8).filter((l) => l !== "")).toEqual(["-", "-", "-", "-"].flatMap((x) => [x]));
      image.run(["fim-perms", "set", "audio,wayland,xorg,dbus_user"]);
      const out = sh(probe, outside).stdout.split("\n").filter((l) => l !== "");
      expect(out.slice(0, 4)).toEqual(["pulse/native", "pipewire-0", "wayland-1", "bus"]);
      expect(out[4]).toBe(`unix:${xdgOutside}/pulse/native|wayland-1|:7|unix:path=${xdgOutside}/bus,guid=1`);
      expect(out[5]).toBe("Xauthority");
    } finally {
      rmSync(xdgOutside, { recursive: true, force: true });
      image.run(["fim-perms", "clear"]);
    }
  });

  test("every permission maps to its bwrap operations, in the reference's order", () => {
    image.run(["fim-perms", "set", "all"]);
    const env = { FIM_DEBUG: "1", WAYLAND_DISPLAY: "w", DISPLAY: ":1", XAUTHORITY: "/x", DBUS_SESSION_BUS_ADDRESS: "unix:path=/b" };
    const debug = lines(image.run(["fim-exec", "true"], { env }).stdout);
    const perms = debug.filter((line) => line.startsWith("D::PERM(")).map((line) => line.slice(3));
    expect(perms).toEqual(["PERM(GPU)", "PERM(HOME)", "PERM(MEDIA)", "PERM(AUDIO)", "PERM(WAYLAND)", "PERM(XORG)", "PERM(DBUS_USER)", "PERM(DBUS_SYSTEM)", "PERM(UDEV)", "PERM(INPUT)", "PERM(USB)", "PERM(NETWORK)", "PERM(SHM)", "PERM(OPTICAL)", "PERM(DEV)"]);
    const spawn = debug.find((line) => line.startsWith("D::Spawn command:"))!;
    for (const part of ["'--dev-bind-try','/dev/dri','/dev/dri'", "'--bind-try','/run/udev','/run/udev'", "'--bind-try','/run/dbus/system_bus_socket'", "'--dev-bind-try','/dev/input','/dev/input'", "'--dev-bind-try','/dev/bus/usb','/dev/bus/usb'", "'--dev-bind-try','/dev','/dev'"]) {
      expect(spawn).toContain(part);
    }
    expect(spawn.indexOf("'--dev-bind-try','/dev','/dev'")).toBeGreaterThan(spawn.indexOf("'--dev-bind-try','/dev/input'"));
    image.run(["fim-perms", "clear"]);
  });
});

describe("unshare options and binds", () => {
  const ns = (kind: string) => readlinkSync(`/proc/self/ns/${kind}`);

  test("net, uts, ipc, cgroup: new namespaces only when asked (the network: unless 'network' is granted; ipc: unless 'shm' is)", () => {
    const probe = "for n in net uts ipc; do readlink /proc/self/ns/$n; done";
    const closed = sh(probe).stdout.trim().split("\n");
    expect(closed[0]).not.toBe(ns("net"));
    expect(closed[1]).toBe(ns("uts"));
    expect(closed[2]).not.toBe(ns("ipc"));
    image.run(["fim-perms", "add", "network,shm"]);
    expect(sh(probe).stdout.trim().split("\n")).toEqual([ns("net"), ns("uts"), ns("ipc")]);
    image.run(["fim-unshare", "set", "net,uts,ipc"]);
    const inside = sh(probe).stdout.trim().split("\n");
    expect(inside[0]).not.toBe(ns("net"));
    expect(inside[1]).not.toBe(ns("uts"));
    expect(inside[2]).not.toBe(ns("ipc"));
    expect(sh("cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '").stdout).toBe("lo\n");
    image.run(["fim-unshare", "clear"]);
    image.run(["fim-perms", "del", "network,shm"]);
  });

  test("pid: the guest's own pid namespace; signals still reach the program", async () => {
    image.run(["fim-unshare", "set", "pid"]);
    try {
      // As root too: the namespace holder mounts its own /proc (bwrap's holder, started by the
      // host's root, left one that a nested pid namespace could not mount over).
      const own = sh("echo $$");
      expect(own.code).toBe(0);
      expect(Number(own.stdout)).toBeLessThan(5);
      const child = Bun.spawn([image.path, "fim-exec", "sh", "-c", "trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done"], { cwd: image.dir, stdout: "pipe", stderr: "pipe" });
      const reader = child.stdout.getReader();
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
      child.kill("SIGTERM");
      expect(await child.exited).toBe(7);
      expect(new TextDecoder().decode((await reader.read()).value)).toBe("term\n");
    } finally {
      image.run(["fim-unshare", "clear"]);
    }
  });

  test("ro, rw and dev binds, with expansion", () => {
    const src = join(image.dir, "bind-src");
    mkdirSync(src, { recursive: true });
    writeFileSync(join(src, "file"), "bound\n");
    chmodSync(src, 0o777);
    image.run(["fim-bind", "add", "ro", "$FIM_TEST_SRC", "/mnt/ro"]);
    image.run(["fim-bind", "add", "rw", src, "/mnt/rw"]);
    image.run(["fim-bind", "add", "dev", "/dev/null", "/mnt/null"]);
    const out = sh("cat /mnt/ro/file; echo no > /mnt/ro/x || echo ro-refused; echo yes > /mnt/rw/y && echo rw-ok; echo z > /mnt/null && echo dev-ok", { FIM_TEST_SRC: src });
    expect(out.stdout).toBe("bound\nro-refused\nrw-ok\ndev-ok\n");
    expect(readFileSync(join(src, "y"), "utf8")).toBe("yes\n");
    for (let i = 0; i < 3; i++) image.run(["fim-bind", "del", "0"]);
  });
});

describe("host checks", () => {
  test("an unusable data directory", () => {
    const result = image.run(["fim-exec", "true"], { env: { FIM_DIR_DATA: "/proc/no-such-dir" } });
    expect(result.code).toBe(125);
    expect(lines(result.stderr)[0]).toStartWith("C::The data directory '/proc/no-such-dir' is not usable (");
    expect(lines(result.stderr)[0]).toEndWith("): set FIM_DIR_DATA to a writable directory");
  });
});

describe("cleanup", () => {
  function processesMentioning(text: string): string[] {
    const found: string[] = [];
    for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8");
        if (cmdline.includes(text)) found.push(`${pid}: ${cmdline.replace(/\0/g, " ")}`);
      } catch {
        // gone
      }
    }
    return found;
  }

  test("a normal exit leaves no process, mount or instance directory", () => {
    expect(sh("true").code).toBe(0);
    expect(processesMentioning(image.path)).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(image.dir);
  });

  test("SIGKILL of the launcher leaves no mount and no process behind", async () => {
    // A duration no other process uses names the guest (busybox's sleep takes numbers only).
    const duration = String(700_000 + (process.pid % 100_000));
    const marker = `sleep\0${duration}\0`;
    const child = Bun.spawn([image.path, "fim-exec", "sh", "-c", `echo ready; exec sleep ${duration}`], { stdout: "pipe", stderr: "pipe" });
    const reader = child.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    const serving = () => processesMentioning(image.path).some((line) => line.includes("erofsfuse"));
    // "ready" comes just before the exec of sleep: wait for both the guest and the FUSE server.
    for (let i = 0; i < 50 && (!serving() || processesMentioning(marker).length === 0); i++) await Bun.sleep(100);
    expect(processesMentioning(marker).length).toBeGreaterThan(0);
    expect(serving()).toBe(true); // the layer's FUSE server runs while the guest does
    child.kill(9);
    await child.exited;
    for (let i = 0; i < 50 && (processesMentioning(marker).length > 0 || processesMentioning(image.path).length > 0); i++) await Bun.sleep(100);
    expect(processesMentioning(marker)).toEqual([]);
    expect(processesMentioning(image.path)).toEqual([]);
    for (const pid of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
      try {
        expect(readFileSync(`/proc/${pid}/mountinfo`, "utf8")).not.toContain(image.dir);
      } catch {
        // gone or not ours to read
      }
    }
    // The next run works (the data directory's lock died with the launcher).
    expect(sh("echo again").stdout).toBe("again\n");
  });
});
