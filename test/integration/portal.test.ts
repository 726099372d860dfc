// The portal: fim_portal in the guest runs programs on the host, those the image allows.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";
import { SLOTS } from "../../core/reserved.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const sh = (target: TestImage, script: string, options: { stdin?: string; env?: Record<string, string> } = {}) => target.run(["fim-exec", "sh", "-c", script], options);
/** The portal's lines of a guest's stderr without their pid: `E::message`. */
const portalErrors = (stderr: string) => stderr.split("\n").filter((line) => line !== "").map((line) => line.replace(/^E::fim_portal::\d+::/, "E::"));
/** Running (a zombie has ended: only its parent has not collected it yet). */
function alive(pid: number): boolean {
  try {
    return !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8"));
  } catch {
    return false;
  }
}

/** Waits (up to 10 s, polling) until `done` holds; false if it never did. */
async function eventually(done: () => boolean): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (done()) return true;
    await Bun.sleep(50);
  }
  return done();
}

/** The portal binary this image extracted (the one the runs use). */
function portalBinary(target: TestImage): string {
  const bin = sh(target, 'echo "$FIM_DIR_APP_BIN"').stdout.trim();
  const path = join(bin, "fim_portal");
  expect(existsSync(path)).toBe(true);
  return path;
}

describe("fim_portal with every program allowed ('fim-portal all on', upstream's portal)", () => {
  beforeAll(() => expect(image.run(["fim-portal", "all", "on"]).code).toBe(0));

  test("runs a host program: its output, exit code, and 128+N for a signal", () => {
    // The guest has no python3; the host does (Node's machines do): it must come from the host.
    expect(sh(image, "command -v python3 || echo none").stdout).toBe("none\n");
    const out = sh(image, 'fim_portal python3 -c "import sys; print(sys.argv[1:])" a "b c"; echo "rc=$?"; fim_portal sh -c "exit 3"; echo "rc=$?"; fim_portal sh -c "kill -TERM \\$\\$"; echo "rc=$?"');
    expect(out.stdout).toBe("['a', 'b c']\nrc=0\nrc=3\nrc=143\n");
  });

  test("signals sent to fim_portal reach the host program", () => {
    // The host program says when its trap is set, through a FIFO of the guest's.
    const out = sh(image, 'mkfifo /tmp/armed; fim_portal sh -c "trap \\"exit 9\\" TERM; echo armed; sleep 5 & wait" > /tmp/armed & p=$!; read x < /tmp/armed; kill -TERM $p; wait $p; echo "rc=$?"');
    expect(out.stdout).toBe("rc=9\n");
  });

  test("an unknown program: the reference's messages and exit 1", () => {
    const out = sh(image, "fim_portal no-such-program-here; echo rc=$?");
    expect(out.stdout).toBe("rc=1\n");
    expect(portalErrors(out.stderr)).toEqual(["E::Could not start PID, program not found?", "E::Failure to dispatch process request", "E::Failure to dispatch process request"]);
  });

  test("the program gets the guest's environment (upstream's portal)", () => {
    const out = sh(image, "FIM_PORTAL_TEST=guest fim_portal printenv FIM_PORTAL_TEST", { env: { FIM_PORTAL_TEST: "host" } });
    expect(out.stdout).toBe("guest\n");
  });

  test("10 MB through stdin and back, intact; concurrent calls", () => {
    const data = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    const expected = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const result = Bun.spawnSync([image.path, "fim-exec", "sh", "-c", "fim_portal cat | sha256sum"], { stdin: data, stdout: "pipe", stderr: "pipe" });
    expect(result.stdout.toString().split(" ")[0]).toBe(expected);
    // Each call waits until all eight have started: calls served one at a time would never end.
    const started = join(image.dir, "started");
    mkdirSync(started);
    const parallel = sh(image, `for i in 1 2 3 4 5 6 7 8; do fim_portal sh -c "touch ${started}/$i; until [ \\$(ls ${started} | wc -l) = 8 ]; do sleep 0.01; done; echo $i" & done; wait`);
    expect(parallel.stdout.trim().split("\n").sort()).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
  });

  test("private: the socket is 0600 in the user's own tree, and only this instance's processes are served", async () => {
    const out = sh(image, 's=$FIM_PORTAL_SOCKET; stat -c "%a %U" "$s"; echo "$s"');
    const [mode, socket] = out.stdout.trim().split("\n");
    expect(mode!.split(" ")[0]).toBe("600");
    expect(socket).toStartWith(`/tmp/fim/app/${process.getuid!()}/`);
    expect(statSync(`/tmp/fim/app/${process.getuid!()}`).mode & 0o777).toBe(0o700);
    // A process of the same user outside the instance (here, the host) is refused.
    const client = portalBinary(image);
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", 'echo "$FIM_PORTAL_SOCKET"; sleep 5'], { stdout: "pipe", stderr: "pipe" });
    const path = new TextDecoder().decode((await guest.stdout.getReader().read()).value).trim();
    const refused = Bun.spawnSync([client, "true"], { env: { ...process.env, FIM_PORTAL_SOCKET: path }, stderr: "pipe" });
    expect(refused.exitCode).toBe(1);
    expect(refused.stderr.toString()).toContain("The portal refused this process (not in its instance)");
    // Refused before the daemon read the whole request (a large environment): still told, not killed by SIGPIPE.
    const large = (count: number, size: number) => Object.fromEntries(Array.from({ length: count }, (_, i) => [`LARGE${i}`, "x".repeat(size)]));
    const refusedLarge = Bun.spawnSync([client, "true"], { env: { ...process.env, FIM_PORTAL_SOCKET: path, ...large(15, 100_000) }, stderr: "pipe" });
    expect(refusedLarge.exitCode).toBe(1);
    expect(refusedLarge.stderr.toString()).toContain("The portal refused this process (not in its instance)");
    guest.kill();
    await guest.exited;
  });
});

describe("closed by default; an allowlist of host programs", () => {
  let closed: TestImage;
  let dir: string;
  let touch: string;
  beforeAll(() => {
    closed = freshImage();
    dir = closed.dir;
    touch = Bun.which("touch", { PATH: process.env.PATH })!;
    // What a guest might have written somewhere the host can see, and links to an allowed file.
    mkdirSync(join(dir, "evil"));
    writeFileSync(join(dir, "evil/touch"), `#!/bin/sh\necho evil > ${dir}/EVIL\n`, { mode: 0o755 });
    mkdirSync(join(dir, "links"));
    symlinkSync(touch, join(dir, "links/touch"));
    symlinkSync(Bun.which("echo")!, join(dir, "links/one"));
    symlinkSync(Bun.which("echo")!, join(dir, "links/two"));
  });
  afterAll(() => closed.cleanup());

  const refusal = (program: string, image = closed.path) => [
    `E::The portal refused to run '${program}' on the host: this image does not allow it`,
    `E::To allow it, run on the host: ${image} fim-portal allow ${program}`,
  ];

  test("a fresh image allows nothing: the call names the program and the command that allows it, exits 126, and nothing runs", () => {
    expect(closed.run(["fim-portal", "list"]).stdout).toBe("");
    const out = sh(closed, `fim_portal touch ${dir}/MADE; echo "rc=$?"`);
    expect(out.stdout).toBe("rc=126\n");
    expect(portalErrors(out.stderr)).toEqual(refusal("touch"));
    expect(existsSync(join(dir, "MADE"))).toBe(false);
  });

  test("an allowed name runs the file the host's PATH finds, also when the guest names that path; nothing else", () => {
    expect(closed.run(["fim-portal", "allow", "touch"]).code).toBe(0);
    const out = sh(
      closed,
      [
        `fim_portal touch ${dir}/BY-NAME; echo "name=$?"`,
        `fim_portal ${touch} ${dir}/BY-PATH; echo "path=$?"`,
        // The guest's PATH is not the host's: the host's own touch runs.
        `PATH=${dir}/evil:$PATH fim_portal touch ${dir}/GUEST-PATH; echo "guest-path=$?"`,
        `fim_portal ${dir}/evil/touch; echo "evil=$?"`,
        `fim_portal ${dir}/links/touch ${dir}/BY-LINK; echo "link=$?"`,
        `cd / && fim_portal ./touch; echo "relative=$?"`,
        `fim_portal ../evil/touch; echo "parent=$?"`,
        `fim_portal ${touch.replace(/\/[^/]+$/, "/../bin/touch")} ${dir}/DOTDOT; echo "dotdot=$?"`,
      ].join("\n"),
    );
    expect(out.stdout).toBe("name=0\npath=0\nguest-path=0\nevil=126\nlink=126\nrelative=126\nparent=126\ndotdot=126\n");
    const badName = (program: string) => `E::The portal refused to run '${program}' on the host: name a host program by its name (looked up in the host's PATH) or by its absolute path`;
    expect(portalErrors(out.stderr)).toEqual([
      ...refusal(`${dir}/evil/touch`),
      ...refusal(`${dir}/links/touch`),
      badName("./touch"),
      badName("../evil/touch"),
      badName(touch.replace(/\/[^/]+$/, "/../bin/touch")),
    ]);
    for (const made of ["BY-NAME", "BY-PATH", "GUEST-PATH"]) expect(existsSync(join(dir, made))).toBe(true);
    for (const refused of ["EVIL", "BY-LINK", "DOTDOT"]) expect(existsSync(join(dir, refused))).toBe(false);
  });

  test("paths are compared as found, not by the file they lead to (a multi-call binary stays one program)", () => {
    expect(closed.run(["fim-portal", "allow", `${dir}/links/one`]).code).toBe(0);
    const out = sh(closed, `fim_portal ${dir}/links/one allowed; fim_portal ${dir}/links/two refused; echo "rc=$?"`);
    expect(out.stdout).toBe("allowed\nrc=126\n");
    expect(portalErrors(out.stderr)).toEqual(refusal(`${dir}/links/two`));
  });

  test("an allowed program runs with the host's environment, not the guest's (LD_PRELOAD, PATH… stay in the guest)", () => {
    expect(closed.run(["fim-portal", "allow", "printenv"]).code).toBe(0);
    const out = sh(closed, 'FIM_PORTAL_TEST=guest LD_PRELOAD=/no/such/lib.so fim_portal printenv FIM_PORTAL_TEST LD_PRELOAD; echo "rc=$?"; fim_portal printenv PATH', {
      env: { FIM_PORTAL_TEST: "host" },
    });
    const [value, code, path] = out.stdout.trim().split("\n");
    expect([value, code]).toEqual(["host", "rc=1"]);
    expect(out.stderr).toBe("");
    // The runtime's own tool directories are not in it.
    expect(path!.split(":").some((entry) => entry.startsWith("/tmp/fim/"))).toBe(false);
  });

  test("an allowed program the host lacks: the reference's not-found messages", () => {
    expect(closed.run(["fim-portal", "allow", "no-such-program-here"]).code).toBe(0);
    const out = sh(closed, "fim_portal no-such-program-here; echo rc=$?");
    expect(out.stdout).toBe("rc=1\n");
    expect(portalErrors(out.stderr)).toEqual(["E::Could not start PID, program not found?", "E::Failure to dispatch process request", "E::Failure to dispatch process request"]);
  });

  test("deny, all on/off and clear; list shows what is stored", () => {
    expect(closed.run(["fim-portal", "list"]).stdout).toBe(`touch\n${dir}/links/one\nprintenv\nno-such-program-here\n`);
    expect(closed.run(["fim-portal", "deny", "touch,printenv", "not-there"])).toMatchObject({ code: 0 });
    expect(lines(closed.run(["fim-portal", "deny", "not-there"]).stderr)).toEqual(["W::'not-there' was not in the list"]);
    expect(closed.run(["fim-portal", "list"]).stdout).toBe(`${dir}/links/one\nno-such-program-here\n`);
    expect(portalErrors(sh(closed, `fim_portal touch ${dir}/DENIED`).stderr)).toEqual(refusal("touch"));

    const on = closed.run(["fim-portal", "all", "on"]);
    expect(lines(on.stderr)).toEqual(["W::Guests of this image may now run any host program through fim_portal, with their own environment"]);
    expect(sh(closed, `fim_portal ${dir}/evil/touch`).code).toBe(0);
    expect(readFileSync(join(dir, "EVIL"), "utf8")).toBe("evil\n");
    const listed = closed.run(["fim-portal", "list"]);
    expect(lines(listed.stderr)).toEqual(["W::Every host program is allowed ('fim-portal all on'): the list applies again after 'fim-portal all off'"]);
    expect(listed.stdout).toBe(`${dir}/links/one\nno-such-program-here\n`);

    expect(closed.run(["fim-portal", "all", "off"]).code).toBe(0);
    expect(sh(closed, `fim_portal ${dir}/links/one still; fim_portal touch x; echo "rc=$?"`).stdout).toBe("still\nrc=126\n");
    expect(closed.run(["fim-portal", "clear"]).code).toBe(0);
    expect(closed.run(["fim-portal", "list"]).stdout).toBe("");
    expect(sh(closed, `fim_portal ${dir}/links/one; echo "rc=$?"`).stdout).toBe("rc=126\n");
  });

  test("command errors name the problem and change nothing", () => {
    expect(closed.run(["fim-portal", "allow", "xdg-open"]).code).toBe(0);
    for (const [args, message] of [
      [["fim-portal"], "Missing op for 'fim-portal' (<allow|deny|list|all|clear>)"],
      [["fim-portal", "alow"], "Invalid portal operation 'alow': did you mean 'allow'?"],
      [["fim-portal", "allow"], "Missing programs for 'allow' operation"],
      [["fim-portal", "deny", ""], "Missing programs for 'deny' operation"],
      [["fim-portal", "allow", "ok", "../x"], "Invalid program '../x' for the portal: a path must be absolute (or give the name alone: it is looked up in the host's PATH)"],
      [["fim-portal", "allow", "/usr/bin/../bin/sh"], "Invalid program '/usr/bin/../bin/sh' for the portal: a path must not contain '.', '..' or empty components"],
      [["fim-portal", "all"], "Missing switch for 'all' operation (<on|off>)"],
      [["fim-portal", "all", "yes"], "Invalid portal switch 'yes' (one of: on, off)"],
      [["fim-portal", "all", "on", "x"], "Trailing arguments for fim-portal: ['x',]"],
      [["fim-portal", "list", "x"], "Trailing arguments for fim-portal: ['x',]"],
    ] as [string[], string][]) {
      const result = closed.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([`C::${message}`, "C::Could not parse arguments", "C::The program exited with an error"]);
    }
    const tooMany = closed.run(["fim-portal", "allow", ...Array.from({ length: 400 }, (_, i) => `program-${i}`)]);
    expect(tooMany.code).toBe(125);
    expect(lines(tooMany.stderr)).toEqual([
      "E::Not enough space to fit the portal's list of programs (4096 bytes)",
      "E::Failed to allow portal programs",
      "C::The program exited with an error",
    ]);
    expect(closed.run(["fim-portal", "list"]).stdout).toBe("xdg-open\n");
    const help = closed.run(["fim-help", "portal"]);
    expect(help.stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-portal : Choose the host programs that guests may run with fim_portal\nUsage: fim-portal <allow|deny> <programs...>\n");
  });

  test("a damaged list keeps the portal closed, says so, and 'fim-portal clear' repairs it", () => {
    const copy = freshImage();
    try {
      expect(copy.run(["fim-portal", "all", "on"]).code).toBe(0);
      const reserved = Number(copy.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
      const fd = openSync(copy.path, "r+");
      writeSync(fd, Buffer.from('{"all": 1}\0'), 0, 11, reserved + SLOTS.portal.offset);
      closeSync(fd);
      const run = sh(copy, `fim_portal touch ${copy.dir}/MADE; echo "rc=$?"`);
      expect(run.stdout).toBe("rc=126\n");
      expect(lines(run.stderr)[0]).toBe(`C::Corrupt portal data in the reserved space of '${copy.path}': all: Invalid type: Expected boolean but received 1: the portal allows no program ('fim-portal clear' resets the list)`);
      expect(existsSync(join(copy.dir, "MADE"))).toBe(false);
      const listed = copy.run(["fim-portal", "list"]);
      expect(listed.code).toBe(125);
      expect(lines(listed.stderr)[0]).toStartWith("E::Corrupt portal data in the reserved space of");
      expect(copy.run(["fim-portal", "clear"]).code).toBe(0);
      expect(copy.run(["fim-portal", "list"])).toMatchObject({ code: 0, stdout: "" });
    } finally {
      copy.cleanup();
    }
  });
});

describe("what the portal started ends with the run", () => {
  // A host program (sleep) and a detached one in its own session that ignores SIGTERM:
  // both outlive the sh that started them. The FIFO makes sh wait until the second has
  // printed its pid.
  const starter = (fifo: string) =>
    `sleep 1000 >/dev/null 2>&1 </dev/null & echo $!; setsid sh -c 'trap "" TERM; echo $$ > ${fifo}; exec sleep 1001' >/dev/null 2>&1 </dev/null & read p < ${fifo}; echo $p`;
  const pidsOf = (text: string) => text.trim().split("\n").map(Number);

  test("the daemon ends with the run, also when the launcher is killed with SIGKILL", async () => {
    expect(sh(image, "true").code).toBe(0);
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; sleep 30"], { stdout: "pipe", stderr: "pipe" });
    await guest.stdout.getReader().read();
    const mine = () => portalDaemonsOf(guest.pid);
    // The supervisor forks the daemon before the guest, but its exec may land after "ready".
    expect(await eventually(() => mine().length === 1)).toBe(true);
    guest.kill(9);
    await guest.exited;
    expect(await eventually(() => mine().length === 0)).toBe(true);
  });

  test("programs still running when the guest exits, even detached ones, are ended", async () => {
    expect(image.run(["fim-portal", "all", "on"]).code).toBe(0);
    const fifo = join(image.dir, "started.fifo");
    Bun.spawnSync(["mkfifo", fifo]);
    const out = sh(image, `pids=$(fim_portal sh -c '${starter(fifo).replace(/'/g, "'\\''")}'); fim_portal sh -c 'kill -0 "$@"' sh $pids && echo "$pids"`);
    const pids = pidsOf(out.stdout);
    expect(pids.length).toBe(2);
    // The supervisor waits for the daemon, which ends them before it exits: gone already.
    expect(pids.filter(alive)).toEqual([]);
  });

  test("...and when the launcher is killed with SIGKILL", async () => {
    const fifo = join(image.dir, "killed.fifo");
    Bun.spawnSync(["mkfifo", fifo]);
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", `fim_portal sh -c '${starter(fifo).replace(/'/g, "'\\''")}'; echo ready; sleep 30`], { stdout: "pipe", stderr: "pipe" });
    let text = "";
    const reader = guest.stdout.getReader();
    while (!text.includes("ready")) text += new TextDecoder().decode((await reader.read()).value);
    const pids = pidsOf(text.replace("ready", ""));
    expect(pids.every(alive)).toBe(true);
    guest.kill(9);
    await guest.exited;
    expect(await eventually(() => pids.every((pid) => !alive(pid)))).toBe(true);
  });

  test("SIGTERM to the daemon: it ends every process it started (SIGKILL for those ignoring SIGTERM), then exits 0", async () => {
    const portal = portalBinary(image);
    const { dir } = image;
    const socket = join(dir, "standalone.sock");
    const fifo = join(dir, "standalone.fifo");
    Bun.spawnSync(["mkfifo", fifo]);
    // This test process stands for the instance: its pid namespace is the one served.
    writeFileSync(join(dir, "status.json"), `{ "child-pid": ${process.pid} }`);
    const daemon = Bun.spawn([portal, "--daemon", socket, join(dir, "status.json"), "--all"], { stderr: "pipe" });
    expect(await eventually(() => existsSync(socket))).toBe(true);
    const client = Bun.spawnSync([portal, "sh", "-c", starter(fifo)], { env: { ...process.env, FIM_PORTAL_SOCKET: socket }, stdout: "pipe", stderr: "pipe" });
    expect(client.exitCode).toBe(0);
    const pids = pidsOf(client.stdout.toString());
    expect(pids.every(alive)).toBe(true);
    daemon.kill("SIGTERM");
    expect(await daemon.exited).toBe(0);
    expect(pids.filter(alive)).toEqual([]);
    expect(existsSync(socket)).toBe(false);
  });

  test("SIGKILL to the daemon itself: each program it started directly is ended with its handler (PR_SET_PDEATHSIG)", async () => {
    const portal = portalBinary(image);
    const { dir } = image;
    const socket = join(dir, "killed.sock");
    writeFileSync(join(dir, "status.json"), `{ "child-pid": ${process.pid} }`);
    const daemon = Bun.spawn([portal, "--daemon", socket, join(dir, "status.json"), "--all"], { stderr: "pipe" });
    expect(await eventually(() => existsSync(socket))).toBe(true);
    const client = Bun.spawn([portal, "sh", "-c", "echo $$; exec sleep 1000"], { env: { ...process.env, FIM_PORTAL_SOCKET: socket }, stdout: "pipe", stderr: "pipe" });
    const pid = Number(new TextDecoder().decode((await client.stdout.getReader().read()).value).trim());
    expect(alive(pid)).toBe(true);
    daemon.kill("SIGKILL");
    await daemon.exited;
    expect(await client.exited).toBe(1); // its connection went with the handler
    expect(await eventually(() => !alive(pid))).toBe(true);
  });
});

function portalDaemonsOf(pid: number): string[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      } catch {
        return "";
      }
    })
    .filter((cmdline) => cmdline.split(" ")[1] === "--daemon" && cmdline.includes(`/instance/${pid}/`));
}
