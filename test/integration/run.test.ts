// Running programs: entry points, identity, environment, exit codes, streams, signals.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { userInfo } from "node:os";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const me = userInfo();
const root = me.uid === 0;

describe("entry points and exit codes", () => {
  test("fim-exec runs a program and returns its exit code", () => {
    expect(image.run(["fim-exec", "echo", "hello", "world"])).toEqual({ code: 0, stdout: "hello world\n", stderr: "" });
    expect(image.run(["fim-exec", "sh", "-c", "exit 42"]).code).toBe(42);
    expect(image.run(["fim-exec", "sh", "-c", "echo out; echo err >&2"])).toMatchObject({ stdout: "out\n", stderr: "err\n" });
  });

  test("arguments after the program are passed verbatim", () => {
    expect(image.run(["fim-exec", "printf", "[%s]", "-c", "a b", "$HOME", ""]).stdout).toBe("[-c][a b][$HOME][]");
  });

  test("a program that does not exist: the shell's not found and 127", () => {
    const result = image.run(["fim-exec", "no-such-program"]);
    expect(result.code).toBe(127);
    expect(result.stderr).toContain("no-such-program: not found");
  });

  test("missing program argument", () => {
    for (const name of ["fim-exec", "fim-root"]) {
      const result = image.run([name]);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([`C::Incorrect number of arguments for ${name}`, "C::Could not parse arguments", "C::The program exited with an error"]);
    }
  });

  test("stdin passes through", () => {
    expect(image.run(["fim-exec", "sh", "-c", "tr a-z A-Z"], { stdin: "piped data\n" }).stdout).toBe("PIPED DATA\n");
  });

  test("a guest killed by a signal gives 128+N", () => {
    expect(image.run(["fim-exec", "sh", "-c", "kill -TERM $$"]).code).toBe(143);
  });

  test("the default command runs the boot program with stored args, then the user's", () => {
    image.run(["fim-boot", "set", "echo"]);
    expect(image.run(["test"]).stdout).toBe("test\n");
    image.run(["fim-boot", "set", "echo", "hello world"]);
    expect(image.run([]).stdout).toBe("hello world\n");
    expect(image.run(["folks people"]).stdout).toBe("hello world folks people\n");
    image.run(["fim-boot", "set", "bash", "-c"]);
    expect(image.run(['echo "arg1: $1 and arg2: $2"', "/bin/bash", "fst", "snd"]).stdout).toBe("arg1: fst and arg2: snd\n");
    image.run(["fim-boot", "set", "$FIM_TEST_PROGRAM"]);
    expect(image.run(["expanded"], { env: { FIM_TEST_PROGRAM: "echo" } }).stdout).toBe("expanded\n");
    image.run(["fim-boot", "clear"]);
    expect(image.run([], { stdin: "echo from-bash\n" }).stdout).toBe("from-bash\n");
  });
});

describe("identity", () => {
  test("fim-exec runs as the caller, fim-root as root", () => {
    expect(image.run(["fim-exec", "id", "-u"]).stdout).toBe(`${me.uid}\n`);
    expect(image.run(["fim-exec", "id", "-g"]).stdout).toBe(`${me.gid}\n`);
    expect(image.run(["fim-root", "id", "-u"]).stdout).toBe("0\n");
    expect(image.run(["fim-exec", "id", "-u"], { env: { FIM_ROOT: "1" } }).stdout).toBe("0\n");
  });

  test("USER, HOME, SHELL, the passwd entry and BASHRC_FILE", () => {
    const script = 'echo "$USER|$HOME|$SHELL"; cat /etc/passwd; cat "$BASHRC_FILE"; echo; id -un';
    const normal = image.run(["fim-exec", "sh", "-c", script], { env: { HOME: "/home/tester", USER: "tester" } }).stdout.split("\n");
    const name = root ? "root" : "tester"; // uid 0 is always called root
    const home = "/home/tester"; // only root *mode* (fim-root) uses /root
    expect(normal[0]).toMatch(new RegExp(`^${name}\\|${home}\\|/tmp/fim/app/${me.uid}/[^/]+/bin/bash$`));
    expect(normal[1]).toMatch(new RegExp(`^${name}:x:${me.uid}:${me.gid}:${name}:${home}:/tmp/fim/app/${me.uid}/[^/]+/bin/bash$`));
    expect(normal[2]).toBe("export PS1='[flatimage-blueprint] \\W > '");
    expect(normal[3]).toBe(name);
    // fim-root keeps the image's own /etc/passwd (blueprint's names only root) for package scripts.
    const rooted = image.run(["fim-root", "sh", "-c", 'echo "$USER|$HOME"; cat /etc/passwd']).stdout.split("\n");
    expect(rooted[0]).toBe("root|/root");
    expect(rooted[1]).toBe("root:x:0:0:root:/root:/bin/sh");
  });

  test("stored UID, GID, USER, HOME, SHELL and PS1 win", () => {
    image.run(["fim-env", "set", "UID=5000x", "GID=6000", "USER=app", "HOME=/home/app", "SHELL=/bin/sh", "PS1=[app] \\W $ "]);
    const out = image.run(["fim-exec", "sh", "-c", 'id -u; id -g; echo "$USER $HOME $SHELL"; cat /etc/passwd; cat "$BASHRC_FILE"']).stdout;
    expect(out).toBe("5000\n6000\napp /home/app /bin/sh\napp:x:5000:6000:app:/home/app:/bin/sh\nexport PS1='[app] \\W $ '");
    image.run(["fim-env", "set", "UID=0"]);
    expect(image.run(["fim-exec", "id", "-u"]).stdout).toBe("0\n");
    image.run(["fim-env", "clear"]);
  });
});

describe("environment", () => {
  test("stored variables reach the guest expanded; the host environment passes through", () => {
    image.run(["fim-env", "set", "GREETING=hello $FIM_TEST_WHO", "SPACED=a b  c", "SUB=$(echo sub)"]);
    const out = image.run(["fim-exec", "sh", "-c", 'echo "$GREETING|$SPACED|$SUB|$FIM_TEST_HOST|$FIM_DIST"'], { env: { FIM_TEST_WHO: "world", FIM_TEST_HOST: "host" } });
    expect(out.stdout).toBe("hello world|a b  c|sub|host|BLUEPRINT\n");
    image.run(["fim-env", "clear"]);
  });

  test("the runtime's own tools come first on PATH, read-only; /tmp is the guest's own; no host root view", () => {
    const marker = `${image.dir}/host-file`;
    require("node:fs").writeFileSync(marker, "host\n");
    const script = `command -v bash; test -e /tmp/fim/run/host/proc || echo no-host-root; test -e ${marker} || echo private-tmp; echo > /tmp/guest-file && echo tmp; echo x > "$(dirname "$(command -v bash)")/new" || echo read-only`;
    const out = image.run(["fim-exec", "sh", "-c", script]).stdout.split("\n");
    expect(out[0]).toMatch(new RegExp(`^/tmp/fim/app/${me.uid}/[^/]+/bin/bash$`));
    expect(out.slice(1, 5)).toEqual(["no-host-root", "private-tmp", "tmp", "read-only"]);
    expect(require("node:fs").existsSync("/tmp/guest-file")).toBe(false);
  });
});

describe("working directory and hostname", () => {
  test("the caller's directory when the guest has it, else $HOME, else /; the host's hostname", () => {
    const { hostname } = require("node:os") as typeof import("node:os");
    image.run(["fim-bind", "add", "ro", image.dir, image.dir]);
    expect(image.run(["fim-exec", "sh", "-c", "pwd; hostname"], { cwd: image.dir }).stdout).toBe(`${image.dir}\n${hostname()}\n`);
    image.run(["fim-bind", "del", "0"]);
    // Not visible: said once, with what would show it (the guest's /tmp is always its own: not said).
    const home = require("node:fs").mkdtempSync(`${userInfo().homedir}/.fim-test-cwd-`);
    try {
      const unseen = image.run(["fim-exec", "pwd"], { cwd: home, env: { HOME: userInfo().homedir } });
      expect(unseen.stdout).not.toBe(`${home}\n`);
      expect(lines(unseen.stderr)).toEqual([`C::The working directory '${home}' is not visible in the sandbox, so the program does not start there (relative paths do not reach its files): grant it with 'fim-perms add home' or 'fim-bind add rw ${home} ${home}'`]);
      expect(image.run(["fim-exec", "pwd"], { cwd: image.dir }).stderr).toBe("");
    } finally {
      require("node:fs").rmSync(home, { recursive: true, force: true });
    }
    // Each permission that shows directories is named for its own (from the permission registry).
    if (require("node:fs").existsSync("/mnt")) {
      expect(lines(image.run(["fim-exec", "true"], { cwd: "/mnt" }).stderr)).toEqual([
        "C::The working directory '/mnt' is not visible in the sandbox, so the program does not start there (relative paths do not reach its files): grant it with 'fim-perms add media' or 'fim-bind add rw /mnt /mnt'",
      ]);
    }
    // /usr/share exists on the host, not in the blueprint image.
    expect(image.run(["fim-exec", "pwd"], { cwd: "/usr/share", env: { HOME: "/tmp" } }).stdout).toBe("/tmp\n");
    expect(image.run(["fim-exec", "pwd"], { cwd: "/usr/share", env: { HOME: "/nonexistent" } }).stdout).toBe("/\n");
  });
});

describe("while a guest runs", () => {
  test("configuration commands write the image (it is not executed during a run)", async () => {
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; read line"], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    const reader = guest.stdout.getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
    expect(image.run(["fim-perms", "add", "media"]).code).toBe(0);
    expect(guest.exitCode).toBe(null); // written while the guest runs, not after
    expect(image.run(["fim-perms", "list"]).stdout).toBe("media\n");
    guest.stdin.write("go\n");
    guest.stdin.end();
    expect(await guest.exited).toBe(0);
    image.run(["fim-perms", "clear"]);
  });
});

describe("signals", () => {
  test("SIGTERM, SIGHUP and SIGINT sent to the launcher reach the guest", async () => {
    for (const [signal, number] of [["SIGTERM", 15], ["SIGHUP", 1], ["SIGINT", 2]] as const) {
      const script = `trap 'echo ${signal}; exit 7' ${signal.slice(3)}; echo ready; while :; do sleep 0.1; done`;
      const child = Bun.spawn([image.path, "fim-exec", "sh", "-c", script], { stdout: "pipe", stderr: "pipe" });
      const reader = child.stdout.getReader();
      const first = await reader.read();
      expect(new TextDecoder().decode(first.value)).toBe("ready\n");
      child.kill(number);
      expect(await child.exited).toBe(7);
      expect(new TextDecoder().decode((await reader.read()).value)).toBe(`${signal}\n`);
    }
  });
});
