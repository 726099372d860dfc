// The escapes of issue 14, tried as a guest would on an image with no permission granted,
// each with its exact outcome. Meant for a regular user: scripts/test.sh runs this folder as
// 'fimtest' too (the user a real guest would attack).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";
import { asRoot, HOST_VIEW, installProbe, loopbackListener, runAsync, scratch, sysvSegment, unixListener, upperOf } from "./helpers.ts";

let image: TestImage;
beforeAll(() => {
  image = freshImage();
  installProbe(image);
});
afterAll(() => image.cleanup());

/** `sh -c script` in the guest; `args` become $1, $2… */
const sh = (script: string, args: string[] = [], env?: Record<string, string | undefined>) => image.run(["fim-exec", "sh", "-c", script, "sh", ...args], { env });
const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

describe("the host's files", () => {
  test("a secret in the user's home (~/.ssh/id_rsa) is not readable, and there is no view of the host's / at /tmp/fim/run/host", () => {
    const home = scratch(".fim-security-home", homedir());
    try {
      const key = join(home.dir, ".ssh/id_rsa");
      mkdirSync(join(home.dir, ".ssh"), { mode: 0o700 });
      writeFileSync(key, "-----BEGIN OPENSSH PRIVATE KEY-----\nnot really\n", { mode: 0o600 });
      const result = sh('for f in "$1" "$2"; do cat "$f"; echo "status $?"; done; ls "$3"; echo "status $?"', [key, `${HOST_VIEW}${key}`, HOST_VIEW], { HOME: home.dir });
      expect(result).toEqual({
        code: 0,
        stdout: "status 1\nstatus 1\nstatus 1\n",
        stderr: `cat: can't open '${key}': No such file or directory\ncat: can't open '${HOST_VIEW}${key}': No such file or directory\nls: ${HOST_VIEW}: No such file or directory\n`,
      });
    } finally {
      home.done();
    }
  });

  test("the host's /tmp is not shared: a host file there is not seen, a guest's file there never reaches the host", () => {
    const name = `/tmp/fim-security-${process.pid}`;
    writeFileSync(`${name}-host`, "host\n");
    try {
      const result = sh('cat "$1-host"; echo "status $?"; echo guest > "$1-guest" && cat "$1-guest"', [name]);
      expect(result).toEqual({ code: 0, stdout: "status 1\nguest\n", stderr: `cat: can't open '${name}-host': No such file or directory\n` });
      expect(existsSync(`${name}-guest`)).toBe(false);
    } finally {
      rmSync(`${name}-host`, { force: true });
      rmSync(`${name}-guest`, { force: true });
    }
  });
});

describe("every permission at once", () => {
  test("still shows nothing of the host that no permission names (/var/tmp, /tmp, beside $HOME, the host's view)", () => {
    const outside = `/var/tmp/fim-security-${process.pid}`;
    const inTmp = `/tmp/fim-security-all-${process.pid}`;
    const home = scratch("fim-security-all");
    mkdirSync(join(home.dir, "me"));
    writeFileSync(join(home.dir, "beside-home"), "beside\n");
    writeFileSync(outside, "outside\n");
    writeFileSync(inTmp, "tmp\n");
    try {
      expect(image.run(["fim-perms", "set", "all"]).code).toBe(0);
      const files = [outside, inTmp, join(home.dir, "beside-home"), `${HOST_VIEW}${outside}`];
      const result = sh('for f in "$@"; do cat "$f"; echo "status $?"; done', files, { HOME: join(home.dir, "me") });
      expect(result.stdout).toBe("status 1\n".repeat(files.length));
      expect(result.stderr).toBe(files.map((file) => `cat: can't open '${file}': No such file or directory\n`).join(""));
    } finally {
      image.run(["fim-perms", "clear"]);
      rmSync(outside, { force: true });
      rmSync(inTmp, { force: true });
      home.done();
    }
  });
});

describe("the runtime's own files", () => {
  test("its executables cannot be replaced from the guest, even by root in it; the next start runs the real bwrap", () => {
    const bin = image.run(["fim-exec", "sh", "-c", 'printf %s "$FIM_DIR_APP_BIN"']).stdout;
    const bwrap = join(bin, "bwrap");
    const original = sha256(bwrap);
    const marker = join(image.dir, "the-replaced-bwrap-ran");
    // Issue 14's attack: a script of bwrap's size in its place (tools were trusted by size).
    const attack = [
      'size=$(stat -c %s "$FIM_DIR_APP_BIN/bwrap")',
      `{ printf '#!/bin/sh\\necho ran > "%s"\\nexit 99\\n' "$1"; head -c "$size" /dev/zero | tr '\\0' '#'; } | head -c "$size" > /tmp/bwrap`,
      'rm "$FIM_DIR_APP_BIN/bwrap"; echo "rm $?"',
      'cat /tmp/bwrap > "$FIM_DIR_APP_BIN/bwrap"; echo "write $?"',
      'chmod 755 "$FIM_DIR_APP_BIN/bwrap"; echo "chmod $?"',
      'echo x > "$FIM_DIR_APP_SBIN/ls"; echo "sbin $?"',
      'echo x > "$FIM_DIR_INSTANCE/guest/bashrc"; echo "instance $?"',
    ].join("\n");
    const sbin = bin.replace(/bin$/, "sbin");
    const refusals = [
      `rm: can't remove '${bin}/bwrap': Read-only file system`,
      `sh: can't create ${bin}/bwrap: Read-only file system`,
      `chmod: ${bin}/bwrap: Read-only file system`,
      `sh: can't create ${sbin}/ls: Read-only file system`,
      `sh: can't create ${bin.replace(/bin$/, "instance/N/guest/bashrc")}: Read-only file system`,
    ];
    // busybox sh names the script's line; the instance is the run's own.
    const stderrLines = (text: string) =>
      text
        .replace(/^sh: line \d+: /gm, "sh: ")
        .replace(/\/instance\/\d+\//g, "/instance/N/")
        .split("\n")
        .filter((line) => line !== "");
    try {
      const guest = image.run(["fim-exec", "sh", "-c", attack, "sh", marker]);
      expect(guest.stdout).toBe("rm 1\nwrite 1\nchmod 1\nsbin 1\ninstance 1\n");
      expect(stderrLines(guest.stderr)).toEqual(refusals);
      // Root in the guest has every capability of its user namespace, but the mounts are locked.
      const rooted = image.run(["fim-root", "sh", "-c", `${attack}\nmount -o remount,rw,bind "$FIM_DIR_APP_BIN"; echo "remount $?"\numount "$FIM_DIR_APP_BIN"; echo "umount $?"`, "sh", marker]);
      expect(rooted.stdout).toBe("rm 1\nwrite 1\nchmod 1\nsbin 1\ninstance 1\nremount 1\numount 1\n");
      expect(stderrLines(rooted.stderr)).toEqual([...refusals, "mount: permission denied (are you root?)", `umount: can't unmount ${bin}: Operation not permitted`]);
      expect(sha256(bwrap)).toBe(original);
      expect(image.run(["fim-exec", "echo", "next start"])).toEqual({ code: 0, stdout: "next start\n", stderr: "" });
      expect(existsSync(marker)).toBe(false);
    } finally {
      // Against an image that let the guest write it, the next test must not run the guest's file.
      if (!existsSync(bwrap) || sha256(bwrap) !== original) rmSync(bwrap, { force: true });
    }
  });

  test("a symlink the guest leaves in its root does not send the next run's binds onto the host", () => {
    // bwrap resolves each destination inside the new root: a link to its view of the host
    // (/oldroot) leads nowhere, and the run that would follow it stops instead.
    const home = scratch(".fim-security-link", homedir());
    const victim = scratch(".fim-security-victim", homedir());
    try {
      writeFileSync(join(home.dir, ".Xauthority"), "cookie\n");
      const env = { HOME: home.dir, XAUTHORITY: join(home.dir, ".Xauthority"), DISPLAY: ":5" };
      const planted = sh('mkdir -p "$(dirname "$HOME")" && ln -s "/oldroot$1" "$HOME" && echo planted', [victim.dir], env);
      expect(planted).toEqual({ code: 0, stdout: "planted\n", stderr: "" });
      expect(image.run(["fim-perms", "set", "xorg"]).code).toBe(0);
      const next = sh('cat "$HOME/.Xauthority"', [], env);
      expect(next.code).toBe(1);
      expect(next.stdout).toBe("");
      expect(next.stderr).toBe(`bwrap: Can't mkdir parents for ${home.dir}/.Xauthority: No such file or directory\n`);
      expect(readdirSync(victim.dir)).toEqual([]);
    } finally {
      image.run(["fim-perms", "clear"]);
      rmSync(join(upperOf(image), home.dir), { force: true });
      home.done();
      victim.done();
    }
  });

  test("the runtime's processes in the guest's /proc do not open onto the host (root, cwd, environ, descriptors)", () => {
    const script = [
      "n=0",
      'for p in /proc/[0-9]*; do case "$(tr "\\0" " " < "$p/cmdline" 2>/dev/null)" in "$FIM_DIR_APP_BIN"/*) ;; *) continue ;; esac',
      "  n=$((n + 1))",
      '  ls "$p/root/" >/dev/null 2>&1 && echo "$p/root opened"',
      '  ls "$p/cwd/" >/dev/null 2>&1 && echo "$p/cwd opened"',
      '  cat "$p/environ" >/dev/null 2>&1 && echo "$p/environ read"',
      '  for fd in "$p"/fd/*; do head -c 1 "$fd" >/dev/null 2>&1 </dev/null && echo "$fd opened"; done',
      "done",
      'echo "checked $n"',
    ].join("\n");
    const result = sh(script);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^checked \d+\n$/);
    // The namespace holder's supervisor, its FUSE server, this guest's supervisor and bwrap.
    expect(Number(result.stdout.split(" ")[1])).toBeGreaterThanOrEqual(3);
  });
});

/**
 * Host processes with `word` in their command line: a detached process is matched in every
 * stage (the forked shell, setsid, sleep), so none slips through before its exec.
 */
function processesNaming(word: string): string[] {
  return readdirSync("/proc").filter((pid) => {
    try {
      return /^\d+$/.test(pid) && pid !== String(process.pid) && readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(word);
    } catch {
      return false;
    }
  });
}

describe("the end of a run", () => {
  test("a process the guest leaves behind ends with its run, even while another run of the image goes on", async () => {
    // Such a process keeps the run's standard input, the user's terminal: left alive, it reads
    // what the user types into the shell next (no controlling terminal, so no SIGTTIN).
    const other = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; read line; echo done"], { cwd: image.dir, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const reader = other.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    const seconds = String(700000 + (process.pid % 100000));
    const left = () => processesNaming(seconds);
    try {
      const run = image.run(["fim-exec", "sh", "-c", 'setsid sleep "$1" </dev/null >/dev/null 2>&1 & echo started', "sh", seconds]);
      expect(run).toEqual({ code: 0, stdout: "started\n", stderr: "" });
      expect(left()).toEqual([]);
    } finally {
      other.stdin.write("end\n");
      await other.stdin.end();
      expect(await other.exited).toBe(0);
      for (const pid of left()) process.kill(Number(pid), "SIGKILL");
    }
  });
});

describe("the portal", () => {
  test("runs no host program by default (not even to read ~/.ssh/id_rsa); 'fim-portal allow' lets the one named run", () => {
    const home = scratch(".fim-security-portal", homedir());
    const key = join(home.dir, ".ssh/id_rsa");
    mkdirSync(join(home.dir, ".ssh"), { mode: 0o700 });
    writeFileSync(key, "the host's key\n", { mode: 0o600 });
    const read = () => sh('fim_portal cat "$1"; echo "status $?"', [key]);
    try {
      const refused = read();
      expect({ ...refused, stderr: lines(refused.stderr) }).toEqual({
        code: 0,
        stdout: "status 126\n",
        stderr: ["E::The portal refused to run 'cat' on the host: this image does not allow it", `E::To allow it, run on the host: ${image.path} fim-portal allow cat`],
      });
      expect(image.run(["fim-portal", "allow", "cat"]).code).toBe(0);
      expect(read()).toEqual({ code: 0, stdout: "the host's key\nstatus 0\n", stderr: "" });
    } finally {
      image.run(["fim-portal", "clear"]);
      home.done();
    }
  });

  test("a host process that an allowed program leaves behind ends with the run", () => {
    const seconds = String(800000 + (process.pid % 100000));
    try {
      // (An image from before the allowlist has no fim-portal: its portal runs anything anyway.)
      image.run(["fim-portal", "allow", "sh"]);
      const run = sh('fim_portal sh -c "setsid sleep $1 </dev/null >/dev/null 2>&1 & echo started"', [seconds]);
      expect(run).toEqual({ code: 0, stdout: "started\n", stderr: "" });
      expect(processesNaming(seconds)).toEqual([]);
    } finally {
      image.run(["fim-portal", "clear"]);
      for (const pid of processesNaming(seconds)) process.kill(Number(pid), "SIGKILL");
    }
  });
});

describe("the data directory", () => {
  // Issue 14: another user who can write where an image lies makes its data directory, with
  // programs in <data>/root, and the owner's next run executes them.
  test("one that other users can write is refused before anything in it runs", () => {
    const other = freshImage(image.path);
    try {
      const data = join(other.dir, ".app.flatimage.data");
      mkdirSync(join(data, "root"), { recursive: true });
      chmodSync(data, 0o777);
      const result = other.run(["fim-exec", "sh", "-c", "echo ran > /ran"]);
      expect({ ...result, stderr: lines(result.stderr) }).toEqual({
        code: 125,
        stdout: "",
        stderr: [
          `C::The data directory '${data}' is writable by other users (mode 0777): they could change what runs in your sandbox. Make it private: chmod go-w '${data}'`,
          "C::The program exited with an error",
        ],
      });
      expect(existsSync(join(data, "root/ran"))).toBe(false);
    } finally {
      other.cleanup();
    }
  });

  test.if(asRoot)("one that another user owns is refused (run as root, which can make it)", () => {
    const other = freshImage(image.path);
    try {
      const data = join(other.dir, ".app.flatimage.data");
      mkdirSync(join(data, "root"), { recursive: true });
      chownSync(data, 65534, 65534);
      const result = other.run(["fim-exec", "sh", "-c", "echo ran > /ran"]);
      expect(result.code).toBe(125);
      const [first] = lines(result.stderr);
      expect(first).toStartWith(`C::The data directory '${data}' belongs to `);
      expect(first).toEndWith(", not to you (uid 0): what it holds would run in your sandbox. Have it removed, or set FIM_DIR_DATA to a directory of yours that only you can write");
      expect(existsSync(join(data, "root/ran"))).toBe(false);
    } finally {
      other.cleanup();
    }
  });
});

describe("the network", () => {
  test("a service on the host's 127.0.0.1 is unreachable", async () => {
    const service = loopbackListener("host service");
    try {
      const result = await runAsync(image, ["fim-exec", "bash", "-c", `exec 3<>/dev/tcp/127.0.0.1/${service.port} && read -r line <&3 && echo "$line"`]);
      expect(result).toEqual({ code: 1, stdout: "", stderr: `bash: connect: Connection refused\nbash: line 1: /dev/tcp/127.0.0.1/${service.port}: Connection refused\n` });
    } finally {
      service.stop();
    }
  });

  test("an abstract unix socket of the host is unreachable", async () => {
    const name = `@fim-security-${process.pid}`;
    const service = unixListener(name, "host abstract socket");
    try {
      const result = await runAsync(image, ["fim-exec", "/probe", `connect:${name}`]);
      expect(result).toEqual({ code: 0, stdout: "connect=ECONNREFUSED\n", stderr: "" });
    } finally {
      service.stop();
    }
  });
});

describe("System V IPC", () => {
  test("a shared memory segment of the host's is not reachable (the guest's IPC namespace is its own)", () => {
    const segment = sysvSegment();
    try {
      expect(image.run(["fim-exec", "/probe", `shmat:${segment.id}`])).toEqual({ code: 0, stdout: "shmat=EINVAL\n", stderr: "" });
    } finally {
      segment.remove();
    }
  });
});

describe("the system call filter", () => {
  test("TIOCSTI and TIOCLINUX are refused (EPERM): no typing into the user's terminal", () => {
    expect(image.run(["fim-exec", "/probe", "tiocsti", "tiocsti-high", "tioclinux"])).toEqual({ code: 0, stdout: "tiocsti=EPERM\ntiocsti-high=EPERM\ntioclinux=EPERM\n", stderr: "" });
  });

  test("no new user namespace inside the guest (EPERM), for the user and for root in the guest", () => {
    for (const command of ["fim-exec", "fim-root"]) {
      const result = image.run([command, "sh", "-c", '/probe clone-user unshare-user; unshare -U true; echo "status $?"']);
      expect([command, result]).toEqual([command, { code: 0, stdout: "clone-user=EPERM\nunshare-user=EPERM\nstatus 1\n", stderr: "unshare: unshare(0x10000000): Operation not permitted\n" }]);
    }
  });
});

describe("generated files", () => {
  test("a stored USER or HOME with a line break or ':' adds no /etc/passwd line", () => {
    const { uid, gid } = userInfo();
    const user = uid === 0 ? "root" : userInfo().username;
    const bin = image.run(["fim-exec", "sh", "-c", 'printf %s "$FIM_DIR_APP_BIN"']).stdout;
    const home = process.env.HOME ?? homedir();
    const cases: [stored: string, entry: string][] = [
      [`USER=evil\nroot2:x:0:0:root:/root:/bin/sh`, `${user}:x:${uid}:${gid}:${user}:${home}:${bin}/bash`],
      [`USER=evil:x:0:0:root:/root:/bin/sh`, `${user}:x:${uid}:${gid}:${user}:${home}:${bin}/bash`],
      [`HOME=/home/evil\nroot2:x:0:0:root:/root:/bin/sh`, `${user}:x:${uid}:${gid}:${user}:${userInfo().homedir}:${bin}/bash`],
    ];
    try {
      for (const [stored, entry] of cases) {
        expect(image.run(["fim-env", "set", stored]).code).toBe(0);
        const passwd = sh("cat /etc/passwd");
        expect([stored, passwd]).toEqual([stored, { code: 0, stdout: `${entry}\n`, stderr: "" }]);
        if (!asRoot) expect(passwd.stdout.split("\n").some((line) => line.split(":")[2] === "0")).toBe(false);
      }
    } finally {
      image.run(["fim-env", "clear"]);
    }
  });

  test("a stored PS1 with quotes, $(…) and backquotes runs nothing when an interactive bash reads the bashrc", () => {
    const ps1 = "[$(touch /ps1-dollar)] \"; touch /ps1-double; \" '; touch /ps1-single; ' `touch /ps1-backtick` \\W > ";
    // Stored so that the host's expansion of the value (fim-env's) gives exactly that text.
    const stored = ps1.replace(/[$`"'\\]/g, (c) => `\\${c}`);
    try {
      expect(image.run(["fim-env", "set", `PS1=${stored}`]).code).toBe(0);
      const result = image.run(["fim-exec", "bash", "-i", "-c", 'printf "%s\\n" "$PS1"; for f in /ps1-*; do test -e "$f" && echo "ran: $f"; done; echo end']);
      expect(result.stdout).toBe(`${ps1}\nend\n`);
      expect(result.code).toBe(0);
      expect(readdirSync(upperOf(image)).filter((name) => name.startsWith("ps1-"))).toEqual([]);
    } finally {
      image.run(["fim-env", "clear"]);
    }
  });
});

describe("the ssh agent", () => {
  test("an agent socket at $SSH_AUTH_SOCK (in /tmp or the runtime directory) is unreachable, with no permission and with every one", async () => {
    const tmp = scratch("ssh-fim-security");
    const xdg = scratch("fim-security-xdg");
    const agents = [join(tmp.dir, `agent.${process.pid}`), join(xdg.dir, "keyring/ssh")];
    const listeners = agents.map((path) => unixListener(path, "ssh agent"));
    try {
      for (const permissions of ["clear", "all"]) {
        expect(image.run(["fim-perms", permissions === "clear" ? "clear" : "set", ...(permissions === "all" ? ["all"] : [])]).code).toBe(0);
        const result = await runAsync(image, ["fim-exec", "/probe", ...agents.map((path) => `connect:${path}`)], { env: { SSH_AUTH_SOCK: agents[0], XDG_RUNTIME_DIR: xdg.dir } });
        expect([permissions, result.code, result.stdout]).toEqual([permissions, 0, "connect=ENOENT\nconnect=ENOENT\n"]);
      }
    } finally {
      image.run(["fim-perms", "clear"]);
      for (const listener of listeners) listener.stop();
      tmp.done();
      xdg.done();
    }
  });
});

