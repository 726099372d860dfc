// Each permission against the thing it names, made by the test (a socket with a listener
// behind it, a file, a host directory): absent or unreachable without the permission,
// present or reachable with it, and nothing beside it. Meant for a regular user: sockets and
// runtime directories are the test's own, under a private $XDG_RUNTIME_DIR.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { accessSync, chmodSync, constants, existsSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type RunResult, type TestImage } from "../helpers/image.ts";
import { asRoot, HOST_VIEW, installProbe, loopbackListener, runAsync, scratch, sysvSegment, unixListener, type Listener } from "./helpers.ts";

let image: TestImage;
beforeAll(() => {
  image = freshImage();
  installProbe(image);
});
afterAll(() => image.cleanup());

/** The guest's `sh -c script`, $1… being `args`, without blocking the event loop (listeners answer). */
const guest = (script: string, args: string[] = [], env: Record<string, string | undefined> = {}) => runAsync(image, ["fim-exec", "sh", "-c", script, "sh", ...args], { env });

/** The same run on the image without any permission, then with `permissions` only. */
async function deniedThenGranted(permissions: string, run: () => Promise<RunResult>): Promise<{ denied: RunResult; granted: RunResult }> {
  expect(image.run(["fim-perms", "clear"]).code).toBe(0);
  const denied = await run();
  expect(image.run(["fim-perms", "set", permissions]).code).toBe(0);
  try {
    return { denied, granted: await run() };
  } finally {
    image.run(["fim-perms", "clear"]);
  }
}

/** Listeners and a scratch directory, all gone when `body` ends. */
async function withSockets<T>(prefix: string, body: (dir: string, listen: (path: string, greeting: string) => void) => Promise<T>): Promise<T> {
  const { dir, done } = scratch(prefix);
  const listeners: Listener[] = [];
  try {
    return await body(dir, (path, greeting) => listeners.push(unixListener(path, greeting)));
  } finally {
    for (const listener of listeners) listener.stop();
    done();
  }
}

/** What the guest sees under its runtime directory, one path a line. */
const LIST_RUNTIME_DIR = 'find "$XDG_RUNTIME_DIR" | sort';

describe("sockets", () => {
  const X11 = "/tmp/.X11-unix";
  // A regular user can make X<n> when the directory is missing (/tmp is 1777) or, as usual,
  // root-owned and 1777; a display number no server uses, and the next one as another display.
  const x11Usable = (() => {
    try {
      accessSync(existsSync(X11) ? X11 : "/tmp", constants.W_OK | constants.X_OK);
      return true;
    } catch {
      return false;
    }
  })();
  let display = 90;
  let madeX11 = false;
  beforeAll(() => {
    if (!x11Usable) return;
    if (!existsSync(X11)) {
      mkdirSync(X11, { mode: 0o1777 });
      chmodSync(X11, 0o1777);
      madeX11 = true;
    }
    while (existsSync(`${X11}/X${display}`) || existsSync(`${X11}/X${display + 1}`)) display += 2;
  });
  afterAll(() => {
    try {
      if (madeX11) rmdirSync(X11);
    } catch {
      // an X server started meanwhile put its socket there: it stays
    }
  });

  test.skipIf(!x11Usable)(`xorg: the socket of $DISPLAY and its cookie $XAUTHORITY, read-only; not another display's socket (skipped when ${X11} is not writable)`, async () => {
    await withSockets("fim-security-xorg", async (dir, listen) => {
      const sockets = [`${X11}/X${display}`, `${X11}/X${display + 1}`];
      listen(sockets[0]!, `X server :${display}`);
      listen(sockets[1]!, `X server :${display + 1}`);
      const cookie = join(dir, "Xauthority");
      writeFileSync(cookie, "cookie\n");
      const script = '/probe "connect:$1" "connect:$2"; cat "$XAUTHORITY"; echo "DISPLAY=$DISPLAY"; (echo more >> "$XAUTHORITY") 2>/dev/null || echo "not written"';
      const { denied, granted } = await deniedThenGranted("xorg", () => guest(script, sockets, { DISPLAY: `:${display}`, XAUTHORITY: cookie }));
      expect(denied).toEqual({
        code: 0,
        stdout: `connect=ENOENT\nconnect=ENOENT\nDISPLAY=:${display}\nnot written\n`,
        stderr: `cat: can't open '${cookie}': No such file or directory\n`,
      });
      expect(granted).toEqual({ code: 0, stdout: `connect=X server :${display}\nconnect=ENOENT\ncookie\nDISPLAY=:${display}\nnot written\n`, stderr: "" });
      expect(readFileSync(cookie, "utf8")).toBe("cookie\n");
    });
  });

  test.skipIf(!x11Usable)("xorg: with XAUTHORITY unset, the cookie is ~/.Xauthority", async () => {
    await withSockets("fim-security-xorg-home", async (home, listen) => {
      listen(`${X11}/X${display}`, "X server");
      writeFileSync(join(home, ".Xauthority"), "home cookie\n");
      writeFileSync(join(home, "other"), "not the cookie\n");
      const script = 'cat "$HOME/.Xauthority"; echo "XAUTHORITY=${XAUTHORITY-unset}"; cat "$HOME/other"';
      const { denied, granted } = await deniedThenGranted("xorg", () => guest(script, [], { DISPLAY: `:${display}`, XAUTHORITY: undefined, HOME: home }));
      expect(denied).toEqual({
        code: 1,
        stdout: "XAUTHORITY=unset\n",
        stderr: `cat: can't open '${home}/.Xauthority': No such file or directory\ncat: can't open '${home}/other': No such file or directory\n`,
      });
      expect(granted).toEqual({ code: 1, stdout: `home cookie\nXAUTHORITY=${home}/.Xauthority\n`, stderr: `cat: can't open '${home}/other': No such file or directory\n` });
    });
  });

  test("wayland: $XDG_RUNTIME_DIR/$WAYLAND_DISPLAY, nothing else of the runtime directory", async () => {
    await withSockets("fim-security-wayland", async (xdg, listen) => {
      listen(`${xdg}/wayland-fim`, "compositor");
      listen(`${xdg}/wayland-other`, "another compositor");
      writeFileSync(join(xdg, "secret"), "secret\n");
      const script = `/probe "connect:$XDG_RUNTIME_DIR/wayland-fim" "connect:$XDG_RUNTIME_DIR/wayland-other"; echo "WAYLAND_DISPLAY=$WAYLAND_DISPLAY"; ${LIST_RUNTIME_DIR}`;
      const { denied, granted } = await deniedThenGranted("wayland", () => guest(script, [], { XDG_RUNTIME_DIR: xdg, WAYLAND_DISPLAY: "wayland-fim" }));
      expect(denied).toEqual({ code: 0, stdout: `connect=ENOENT\nconnect=ENOENT\nWAYLAND_DISPLAY=wayland-fim\n${xdg}\n`, stderr: "" });
      expect(granted).toEqual({ code: 0, stdout: `connect=compositor\nconnect=ENOENT\nWAYLAND_DISPLAY=wayland-fim\n${xdg}\n${xdg}/wayland-fim\n`, stderr: "" });
    });
  });

  test("dbus_user: the socket of $DBUS_SESSION_BUS_ADDRESS, nothing else of the runtime directory", async () => {
    await withSockets("fim-security-dbus", async (xdg, listen) => {
      listen(`${xdg}/bus`, "session bus");
      listen(`${xdg}/other-bus`, "another bus");
      const address = `unix:path=${xdg}/bus,guid=0123456789abcdef`;
      const script = `/probe "connect:$XDG_RUNTIME_DIR/bus" "connect:$XDG_RUNTIME_DIR/other-bus"; ${LIST_RUNTIME_DIR}`;
      const { denied, granted } = await deniedThenGranted("dbus_user", () => guest(script, [], { XDG_RUNTIME_DIR: xdg, DBUS_SESSION_BUS_ADDRESS: address }));
      expect(denied).toEqual({ code: 0, stdout: `connect=ENOENT\nconnect=ENOENT\n${xdg}\n`, stderr: "" });
      expect(granted).toEqual({ code: 0, stdout: `connect=session bus\nconnect=ENOENT\n${xdg}\n${xdg}/bus\n`, stderr: "" });
    });
  });

  test("dbus_user with an abstract address (unix:abstract=…): reachable only when 'network' is granted too", async () => {
    const name = `fim-security-bus-${process.pid}`;
    await withSockets("fim-security-dbus-abstract", async (_, listen) => {
      listen(`@${name}`, "abstract session bus");
      const { denied, granted } = await deniedThenGranted("dbus_user", () => guest('/probe "connect:@$1"', [name], { DBUS_SESSION_BUS_ADDRESS: `unix:abstract=${name}` }));
      expect([denied.stdout, granted.stdout]).toEqual(["connect=ECONNREFUSED\n", "connect=ECONNREFUSED\n"]);
      image.run(["fim-perms", "set", "dbus_user,network"]);
      try {
        expect(await guest('/probe "connect:@$1"', [name], { DBUS_SESSION_BUS_ADDRESS: `unix:abstract=${name}` })).toEqual({ code: 0, stdout: "connect=abstract session bus\n", stderr: "" });
      } finally {
        image.run(["fim-perms", "clear"]);
      }
    });
  });

  test("audio: $XDG_RUNTIME_DIR/pulse/native and pipewire-0, PULSE_SERVER; nothing else of the runtime directory", async () => {
    await withSockets("fim-security-audio", async (xdg, listen) => {
      listen(`${xdg}/pulse/native`, "pulseaudio");
      listen(`${xdg}/pipewire-0`, "pipewire");
      writeFileSync(join(xdg, "pulse/pid"), "1\n");
      const script = `/probe "connect:$XDG_RUNTIME_DIR/pulse/native" "connect:$XDG_RUNTIME_DIR/pipewire-0"; echo "PULSE_SERVER=\${PULSE_SERVER-unset}"; ${LIST_RUNTIME_DIR}`;
      const { denied, granted } = await deniedThenGranted("audio", () => guest(script, [], { XDG_RUNTIME_DIR: xdg, PULSE_SERVER: undefined }));
      expect(denied).toEqual({ code: 0, stdout: `connect=ENOENT\nconnect=ENOENT\nPULSE_SERVER=unset\n${xdg}\n`, stderr: "" });
      expect(granted).toEqual({
        code: 0,
        stdout: `connect=pulseaudio\nconnect=pipewire\nPULSE_SERVER=unix:${xdg}/pulse/native\n${xdg}\n${xdg}/pipewire-0\n${xdg}/pulse\n${xdg}/pulse/native\n`,
        stderr: "",
      });
    });
  });

  test("dbus_system: the system bus socket /run/dbus/system_bus_socket (the host's, when it has one)", () => {
    const socket = "/run/dbus/system_bus_socket";
    const onHost = existsSync(socket);
    const run = () => {
      const result = image.run(["fim-exec", "sh", "-c", 'test -S "$1" && echo socket || echo none', "sh", socket], { env: { FIM_DEBUG: "1" } });
      const output = lines(result.stdout);
      return { bound: output.find((line) => line.startsWith("D::Spawn command:"))!.includes(`'--bind-try','${socket}','${socket}'`), seen: output.at(-1) };
    };
    // A regular user cannot make that path: the host's socket, if any, is what is checked.
    image.run(["fim-perms", "clear"]);
    const denied = run();
    image.run(["fim-perms", "set", "dbus_system"]);
    try {
      expect([denied, run()]).toEqual([
        { bound: false, seen: "none" },
        { bound: true, seen: onHost ? "socket" : "none" },
      ]);
    } finally {
      image.run(["fim-perms", "clear"]);
    }
  });
});

describe("files and directories", () => {
  test(`home: the host's $HOME, read-write, and nothing beside it${asRoot ? " (not for root, as upstream)" : ""}`, async () => {
    const { dir, done } = scratch("fim-security-home");
    try {
      const home = join(dir, "me");
      mkdirSync(home);
      mkdirSync(join(dir, "other"));
      writeFileSync(join(home, "note"), "in my home\n");
      writeFileSync(join(dir, "other/secret"), "another user's\n");
      const script = 'cat "$HOME/note"; echo written > "$HOME/written" && echo "write ok"; cat "$1"; echo "status $?"';
      const { denied, granted } = await deniedThenGranted("home", () => guest(script, [join(dir, "other/secret")], { HOME: home }));
      const absent = {
        code: 0,
        stdout: "status 1\n",
        stderr: `cat: can't open '${home}/note': No such file or directory\nsh: can't create ${home}/written: nonexistent directory\ncat: can't open '${dir}/other/secret': No such file or directory\n`,
      };
      expect({ ...denied, stderr: denied.stderr.replace(/^sh: line \d+: /m, "sh: ") }).toEqual(absent);
      if (asRoot) expect({ ...granted, stderr: granted.stderr.replace(/^sh: line \d+: /m, "sh: ") }).toEqual(absent);
      else {
        expect(granted).toEqual({ code: 0, stdout: "in my home\nwrite ok\nstatus 1\n", stderr: `cat: can't open '${dir}/other/secret': No such file or directory\n` });
        expect(readFileSync(join(home, "written"), "utf8")).toBe("written\n");
      }
    } finally {
      done();
    }
  });

  test("media: the host's /media, /run/media and /mnt", async () => {
    const mounts = ["/media", "/run/media", "/mnt"].filter((path) => existsSync(path));
    const script = 'for d in "$@"; do stat -c "%d:%i" "$d" 2>/dev/null || echo none; done';
    const { denied, granted } = await deniedThenGranted("media", () => guest(script, mounts.flatMap((path) => [path, `${HOST_VIEW}${path}`])));
    // Per directory: [what the guest has there, what it has at the host's view of it].
    const seen = (result: RunResult) => mounts.map((_, i) => result.stdout.split("\n").slice(2 * i, 2 * i + 2));
    const host = mounts.map((path) => `${statSync(path).dev}:${statSync(path).ino}`);
    // Without it, the image's own directory (or none), never the host's.
    expect(seen(denied).map(([, view]) => view)).toEqual(mounts.map(() => "none"));
    for (const [i, [own]] of seen(denied).entries()) expect([mounts[i], own]).not.toEqual([mounts[i], host[i]]);
    expect(seen(granted)).toEqual(host.map((identity) => [identity, "none"]));
  });

  test("shm: the host's /dev/shm, read-write, and its System V IPC (shared memory segments)", async () => {
    const name = `/dev/shm/fim-security-${process.pid}`;
    writeFileSync(name, "shared\n");
    const segment = sysvSegment();
    try {
      const script = 'for f in "$1" "$2"; do cat "$f"; echo "status $?"; done; echo guest > "$1-guest"; /probe "shmat:$3"';
      const { denied, granted } = await deniedThenGranted("shm", async () => {
        rmSync(`${name}-guest`, { force: true });
        const result = await guest(script, [name, `${HOST_VIEW}${name}`, String(segment.id)]);
        return { ...result, stdout: `${result.stdout}host: ${existsSync(`${name}-guest`) ? readFileSync(`${name}-guest`, "utf8") : "none\n"}` };
      });
      expect(denied).toEqual({
        code: 0,
        stdout: "status 1\nstatus 1\nshmat=EINVAL\nhost: none\n",
        stderr: `cat: can't open '${name}': No such file or directory\ncat: can't open '${HOST_VIEW}${name}': No such file or directory\n`,
      });
      expect(granted).toEqual({ code: 0, stdout: "shared\nstatus 0\nstatus 1\nshmat=ok\nhost: guest\n", stderr: `cat: can't open '${HOST_VIEW}${name}': No such file or directory\n` });
    } finally {
      segment.remove();
      rmSync(name, { force: true });
      rmSync(`${name}-guest`, { force: true });
    }
  });

  test("dev: the host's /dev (here /dev/fuse, which the minimal /dev lacks)", async () => {
    const expected = Bun.spawnSync(["stat", "-c", "%F %t:%T", "/dev/fuse"]).stdout.toString();
    const script = 'for f in "$@"; do stat -c "%F %t:%T" "$f" 2>&1; done';
    const { denied, granted } = await deniedThenGranted("dev", () => guest(script, ["/dev/fuse", `${HOST_VIEW}/dev/fuse`]));
    const missing = (path: string) => `stat: can't stat '${path}': No such file or directory\n`;
    expect(denied).toEqual({ code: 1, stdout: `${missing("/dev/fuse")}${missing(`${HOST_VIEW}/dev/fuse`)}`, stderr: "" });
    expect(granted).toEqual({ code: 1, stdout: `${expected}${missing(`${HOST_VIEW}/dev/fuse`)}`, stderr: "" });
  });

  // Devices a test cannot make: checked where the host has them.
  const devices: [permission: string, paths: string[]][] = [
    ["gpu", ["/dev/dri"]],
    ["input", ["/dev/input", "/dev/uinput"]],
    ["usb", ["/dev/bus/usb", "/dev/usb"]],
    ["udev", ["/run/udev"]],
    ["optical", ["/dev/sr0", "/dev/sg0"]],
  ];
  for (const [permission, paths] of devices) {
    const present = paths.filter((path) => existsSync(path));
    test.skipIf(present.length === 0)(`${permission}: ${paths.join(", ")} (skipped: the host has none)`, async () => {
      const script = 'for p in "$@"; do test -e "$p" && echo "$p present" || echo "$p absent"; done';
      const { denied, granted } = await deniedThenGranted(permission, () => guest(script, present));
      expect(denied.stdout).toBe(present.map((path) => `${path} absent\n`).join(""));
      expect(granted.stdout).toBe(present.map((path) => `${path} present\n`).join(""));
    });
  }
});

describe("network", () => {
  test("network: the host's 127.0.0.1 services and abstract sockets, and its resolver files read-only; fim-unshare add net closes it again", async () => {
    const service = loopbackListener("host service");
    const name = `@fim-security-net-${process.pid}`;
    const abstract = unixListener(name, "host abstract socket");
    try {
      const script = `exec 3<>/dev/tcp/127.0.0.1/${service.port} && read -r line <&3 && echo "tcp: $line"; /probe "connect:${name}"; cat /etc/resolv.conf; echo x >> /etc/resolv.conf || echo read-only`;
      const run = () => runAsync(image, ["fim-exec", "bash", "-c", script]);
      const { denied, granted } = await deniedThenGranted("network", run);
      expect(denied.stdout).toStartWith("connect=ECONNREFUSED\n");
      expect(denied.stderr).toStartWith(`bash: connect: Connection refused\nbash: line 1: /dev/tcp/127.0.0.1/${service.port}: Connection refused\n`);
      const resolver = existsSync("/etc/resolv.conf") ? readFileSync("/etc/resolv.conf", "utf8") : "";
      expect(granted.stdout).toBe(`tcp: host service\nconnect=host abstract socket\n${resolver}read-only\n`);
      // The host's file is root's: a regular user is refused before the read-only mount is.
      expect(granted.stderr).toBe(`bash: line 1: /etc/resolv.conf: ${asRoot ? "Read-only file system" : "Permission denied"}\n`);
      image.run(["fim-perms", "set", "network"]);
      image.run(["fim-unshare", "set", "net"]);
      try {
        const unshared = await run();
        expect(unshared.stdout).toStartWith("connect=ECONNREFUSED\n");
        expect(unshared.stderr).toStartWith("bash: connect: Connection refused\n");
      } finally {
        image.run(["fim-unshare", "clear"]);
        image.run(["fim-perms", "clear"]);
      }
    } finally {
      service.stop();
      abstract.stop();
    }
  });
});
