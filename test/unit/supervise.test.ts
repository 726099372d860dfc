// fim_supervise (toolset/src/fim_supervise.c), the run's supervisor, driven as a program.
// Synchronisation is by pipes and FIFOs: a test waits for a line the child prints, and
// "every holder of this pipe has died" is the end of file of a pipe they all inherited.
import { afterAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { flock, LOCK_SH } from "../../core/libc.ts";
import { readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BIN = join(import.meta.dir, "../../toolset/out/x86_64/bin/fim_supervise");
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the tool set (sudo toolset/build.sh)`);

const dir = mkdtempSync(join(tmpdir(), "fim-supervise-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let serial = 0;
/** A fresh path in the test directory. */
const path = (name: string) => join(dir, `${++serial}-${name}`);
function fifo(name: string): string {
  const file = path(name);
  expect(Bun.spawnSync(["mkfifo", file]).exitCode).toBe(0);
  return file;
}

/** A counted record of the plan. */
const record = (kind: string, ...argv: string[]) => [`--${kind}`, String(argv.length), ...argv];
const sh = (script: string) => ["sh", "-c", script];
/** Quotes a word for sh. */
const quote = (word: string) => `'${word.replace(/'/g, "'\\''")}'`;

/** A dead process: gone, or a zombie its parent has not reaped yet. */
function dead(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] === "Z";
  } catch {
    return true;
  }
}

/** Waits for a condition of the system that no pipe can tell (a lock request, a reaped zombie). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await Bun.sleep(5);
}

/** Whether a process waits for an exclusive flock on the file (a line of /proc/locks). */
const waitingForWrite = (lock: string) => {
  const inode = statSync(lock).ino;
  return () => new RegExp(`-> FLOCK\\s+ADVISORY\\s+WRITE\\s+\\d+\\s+[0-9a-f]+:[0-9a-f]+:${inode} `).test(readFileSync("/proc/locks", "utf8"));
};

class Run {
  readonly proc;
  /** Our end of a pipe at descriptor 3 of the supervisor (inherited by what it starts). */
  readonly watch: number | undefined;
  private stdout = "";
  private reader;
  constructor(args: string[], { watch = false, command = [BIN], stdin = "ignore" }: { watch?: boolean; command?: string[]; stdin?: "ignore" | "pipe" } = {}) {
    this.proc = Bun.spawn([...command, ...args], { stdio: [stdin, "pipe", "pipe", ...(watch ? ["pipe" as const] : [])] });
    this.watch = watch ? (this.proc.stdio[3] as number) : undefined;
    this.reader = this.proc.stdout.getReader();
  }
  /** The output so far, once `done` holds for it. */
  async output(done: (stdout: string) => boolean): Promise<string> {
    const decoder = new TextDecoder();
    while (!done(this.stdout)) {
      const { value, done: ended } = await this.reader.read();
      if (ended) throw new Error(`the output ended without what was awaited: ${JSON.stringify(this.stdout)}`);
      this.stdout += decoder.decode(value, { stream: true });
    }
    return this.stdout;
  }
  /** The first line that matches. */
  async line(pattern: RegExp): Promise<string> {
    const lines = () => this.stdout.split(/\r?\n/).slice(0, -1);
    await this.output(() => lines().some((l) => pattern.test(l)));
    return lines().find((l) => pattern.test(l))!;
  }
  /** Resolves when every process holding the watch pipe has died. */
  async allDead(): Promise<void> {
    await Bun.file(this.watch!).text();
  }
  async end(): Promise<{ code: number; stdout: string; stderr: string }> {
    const decoder = new TextDecoder();
    for (;;) {
      const { value, done } = await this.reader.read();
      if (done) break;
      this.stdout += decoder.decode(value, { stream: true });
    }
    const [code, stderr] = await Promise.all([this.proc.exited, new Response(this.proc.stderr).text()]);
    return { code, stdout: this.stdout, stderr };
  }
}

const run = (args: string[]) => new Run(args).end();

describe("exit status", () => {
  test.each([
    [["true"], 0],
    [sh("exit 3"), 3],
    [sh("kill -KILL $$"), 128 + 9],
    [sh("kill -TERM $$"), 128 + 15],
  ])("the child %p: %p", async (child, code) => {
    expect((await run(record("child", ...child))).code).toBe(code);
  });

  test("a child that cannot be run: 127 when not found, 126 otherwise, with the line naming it", async () => {
    const missing = await new Run(record("child", "/nonexistent/program")).end();
    expect(missing.code).toBe(127);
    expect(missing.stderr).toMatch(/^C::sandbox::\d+::Could not run '\/nonexistent\/program': No such file or directory\n$/);
    const data = path("not-executable");
    writeFileSync(data, "data");
    const marks = path("marks");
    const denied = new Run(["--tag", "exec", ...record("child", data), ...record("after", ...sh(`echo after > ${quote(marks)}`))]);
    const result = await denied.end();
    expect(result.code).toBe(126);
    expect(result.stderr).toBe(`C::exec::${denied.proc.pid}::Could not run '${data}': Permission denied\n`);
    expect(readFileSync(marks, "utf8")).toBe("after\n");
  });
});

// A shell waits for a trapped signal in `wait` (dash checks for pending traps before it
// sleeps there; a `read` could miss a signal that comes just before it). Its traps end the
// background sleep with SIGKILL: a SIGTERM that came before the forked shell had exec'd sleep
// would be lost in the shell's own handler.
const block = "sleep 1000 & wait $!";
const trap = (name: string, then: string) => `trap 'kill -KILL $! 2>/dev/null; ${then}' ${name}`;

describe("signals", () => {
  // The child answers the signal and exits 5.
  const answer = (name: string) => `${trap(name, `echo got ${name}; exit 5`)}; echo started; ${block}`;

  test.each(["TERM", "HUP", "USR1", "USR2", "INT", "QUIT"])("SIG%s reaches the child (stdin is not a terminal)", async (name) => {
    const supervisor = new Run(record("child", ...sh(answer(name))));
    await supervisor.line(/^started$/);
    supervisor.proc.kill(`SIG${name}` as NodeJS.Signals);
    const result = await supervisor.end();
    expect(result.stdout).toBe("started\ngot " + name + "\n");
    expect(result.code).toBe(5);
  });

  test("with --status, a signal goes to the first \"child-pid\" the file names", async () => {
    const status = path("status.json");
    const inner = path("inner.sh");
    writeFileSync(inner, `${trap("TERM", "echo inner got TERM; exit 0")}; echo inner-ready; ${block}\n`);
    const outer = `trap 'echo outer got TERM' TERM; sh ${quote(inner)} & printf '{\\n  "child-pid": %d\\n}\\n{ "child-pid": 1 }\\n' $! >&3; echo status-written; wait $!; echo outer-done; exit 9`;
    const supervisor = new Run(["--status", status, ...record("child", ...sh(outer))]);
    await supervisor.output((out) => out.includes("inner-ready\n") && out.includes("status-written\n"));
    supervisor.proc.kill("SIGTERM");
    const result = await supervisor.end();
    expect(result.stdout).toContain("inner got TERM\n");
    expect(result.stdout).not.toContain("outer got TERM");
    expect(result.code).toBe(9);
    expect(readFileSync(status, "utf8")).toStartWith('{\n  "child-pid": ');
  });

  test("with --status naming no pid yet, a signal goes to the child itself", async () => {
    const status = path("status.json");
    const supervisor = new Run(["--status", status, ...record("child", ...sh(answer("TERM")))]);
    await supervisor.line(/^started$/);
    supervisor.proc.kill("SIGTERM");
    expect(await supervisor.end()).toMatchObject({ code: 5, stdout: "started\ngot TERM\n" });
  });

  test("on a terminal, SIGINT and SIGQUIT are not forwarded (the terminal sends them to the guest itself)", async () => {
    const child = [
      ...["INT", "QUIT", "USR1"].map((name) => trap(name, `echo got-${name}`)),
      trap("TERM", "echo got-TERM; exit 4"),
      '[ -t 0 ] && echo "stdin is a terminal"; echo "supervisor $PPID"',
      `while :; do ${block}; done`,
    ].join("; ");
    const line = [BIN, ...record("child", ...sh(child))].map(quote).join(" ");
    const terminal = new Run(["-qec", line, "/dev/null"], { command: ["script"] });
    const supervisor = Number((await terminal.line(/^supervisor \d+/)).split(" ")[1]);
    process.kill(supervisor, "SIGINT");
    process.kill(supervisor, "SIGQUIT");
    // Forwarded signals keep their order, and the shell runs traps by signal number: had INT
    // or QUIT been forwarded, its answer would come before this one.
    process.kill(supervisor, "SIGUSR1");
    await terminal.line(/^got-USR1/);
    process.kill(supervisor, "SIGTERM");
    const result = await terminal.end();
    expect(result.stdout).toContain("stdin is a terminal");
    expect(result.stdout).not.toContain("got-INT");
    expect(result.stdout).not.toContain("got-QUIT");
    expect(result.stdout).toContain("got-TERM");
    expect(result.code).toBe(4);
  });

  test("signals ignored when it starts are still forwarded, and what it starts gets default signal handling", async () => {
    // bwrap is started by the launcher with SIGINT ignored; the guest must get it back.
    const ignoring = ["sh", "-c", 'trap "" INT QUIT; exec "$0" "$@"', BIN];
    const status = await new Run(record("child", "grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"), { command: ignoring }).end();
    expect(status.stdout).toBe("SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    const supervisor = new Run(record("child", ...sh(answer("INT"))), { command: ignoring });
    await supervisor.line(/^started$/);
    supervisor.proc.kill("SIGINT");
    expect(await supervisor.end()).toMatchObject({ code: 5, stdout: "started\ngot INT\n" });
  });

  test("a signal while the steps run ends the run: the step is killed, the --after commands run, the child does not", async () => {
    const step = fifo("step");
    const marks = path("marks");
    const supervisor = new Run([
      ...record("step", ...sh(`echo $$ > ${quote(step)}; exec sleep 1000`)),
      ...record("child", ...sh(`echo child >> ${quote(marks)}`)),
      ...record("after", ...sh(`echo after >> ${quote(marks)}`)),
    ]);
    const pid = Number(await readFile(step, "utf8"));
    supervisor.proc.kill("SIGTERM");
    const result = await supervisor.end();
    expect(result.code).toBe(128 + 15);
    expect(result.stderr).toBe("");
    expect(readFileSync(marks, "utf8")).toBe("after\n");
    expect(dead(pid)).toBe(true);
  });
});

describe("--step", () => {
  test("steps run in order, with stdin /dev/null and their output in the log, before the child", async () => {
    const [log, marks] = [path("log"), path("marks")];
    const result = await run([
      "--log", log,
      ...record("step", ...sh(`readlink /proc/$$/fd/0; echo one >> ${quote(marks)}`)),
      ...record("step", ...sh(`echo two >> ${quote(marks)}; echo to-stderr >&2`)),
      ...record("child", ...sh(`echo child >> ${quote(marks)}`)),
    ]);
    expect(result.code).toBe(0);
    expect(readFileSync(marks, "utf8")).toBe("one\ntwo\nchild\n");
    expect(readFileSync(log, "utf8")).toBe("/dev/null\nto-stderr\n");
  });

  test("a failing step: exit 125 and one report with the log; no child; the --after commands still run", async () => {
    const [log, marks] = [path("log"), path("marks")];
    writeFileSync(log, "earlier\n");
    const supervisor = new Run([
      "--log", log, "--tag", "layers",
      ...record("step", ...sh("echo first step")),
      ...record("step", ...sh("echo out; echo err >&2; printf '\\n\\n'; exit 4")),
      ...record("step", ...sh(`echo third >> ${quote(marks)}`)),
      ...record("child", ...sh(`echo child >> ${quote(marks)}`)),
      ...record("after", ...sh(`echo after >> ${quote(marks)}`)),
    ]);
    const result = await supervisor.end();
    expect(result.code).toBe(125);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(
      `C::layers::${supervisor.proc.pid}::Could not prepare the sandbox: 'sh -c echo out; echo err >&2; printf '\\n\\n'; exit 4' failed (exit status 4); its output:\n` +
        "earlier\nfirst step\nout\nerr\n",
    );
    expect(readFileSync(marks, "utf8")).toBe("after\n");
  });

  test("a step killed by a signal is reported with it", async () => {
    const supervisor = new Run([...record("step", ...sh("kill -KILL $$")), ...record("child", "true")]);
    const result = await supervisor.end();
    expect(result.code).toBe(125);
    expect(result.stderr).toBe(`C::sandbox::${supervisor.proc.pid}::Could not prepare the sandbox: 'sh -c kill -KILL $$' failed (signal 9); its output:\n\n`);
  });
});

describe("--ready", () => {
  test("a server is ready when it says so, keeps running with terminal signals ignored, and dies with the supervisor", async () => {
    const pidfile = path("server");
    const supervisor = new Run(
      [
        ...record("ready", ...sh(`echo $$ > ${quote(pidfile)}; echo starting; echo ready; exec sleep 1000`)),
        ...record("child", ...sh(`p=$(cat ${quote(pidfile)}); kill -0 $p && echo alive; sed -n 's/^SigIgn:\t//p' /proc/$p/status; readlink /proc/$p/fd/0`)),
      ],
      { watch: true },
    );
    const result = await supervisor.end();
    expect(result.code).toBe(0);
    const [alive, ignored, stdin] = result.stdout.trim().split("\n");
    expect(alive).toBe("alive");
    const SIGINT_QUIT = (1n << 1n) | (1n << 2n);
    expect(BigInt(`0x${ignored}`) & SIGINT_QUIT).toBe(SIGINT_QUIT);
    expect(stdin).toBe("/dev/null");
    await supervisor.allDead(); // the server too: its parent-death signal
    await until(() => dead(Number(readFileSync(pidfile, "utf8"))));
  });

  test("a server that says ready and exits at once is ready", async () => {
    expect((await run([...record("ready", ...sh("echo ready")), ...record("child", ...sh("echo child"))])).stdout).toBe("child\n");
  });

  test("a server that ends before saying ready fails the run with its output", async () => {
    const log = path("log");
    const supervisor = new Run(["--log", log, ...record("ready", ...sh("echo not-ready; echo oops >&2; exit 2")), ...record("child", ...sh("echo child"))]);
    const result = await supervisor.end();
    expect(result.code).toBe(125);
    expect(result.stdout).toBe("");
    expect(result.stderr).toBe(`C::sandbox::${supervisor.proc.pid}::Could not prepare the sandbox: 'sh -c echo not-ready; echo oops >&2; exit 2' failed (exit status 2); its output:\noops\n`);
  });

  test("a server that closes its stdout without saying ready is killed and reported", async () => {
    const [log, pidfile] = [path("log"), path("server")];
    const supervisor = new Run(["--log", log, ...record("ready", ...sh(`echo $$ > ${quote(pidfile)}; exec >&-; echo closed >&2; exec sleep 1000`)), ...record("child", "true")]);
    const result = await supervisor.end();
    expect(result.code).toBe(125);
    expect(result.stderr).toEndWith(`failed (signal 9); its output:\nclosed\n`);
    expect(dead(Number(readFileSync(pidfile, "utf8")))).toBe(true);
  });
});

describe("--mounted", () => {
  test("mount points pass (a trailing slash aside), anything else fails with the steps' output", async () => {
    expect((await run([...record("mounted", "/", "/proc/"), ...record("child", "true")])).code).toBe(0);
    const plain = path("not-a-mount-point");
    mkdirSync(plain);
    const log = path("log");
    const supervisor = new Run(["--log", log, ...record("step", ...sh("echo mounting")), ...record("mounted", "/", plain), ...record("child", ...sh("echo child"))]);
    const result = await supervisor.end();
    expect(result).toMatchObject({ code: 125, stdout: "" });
    expect(result.stderr).toBe(`C::sandbox::${supervisor.proc.pid}::Could not prepare the sandbox: nothing is mounted on ${plain}; the steps' output:\nmounting\n`);
  });

  test("names with spaces, tabs and backslashes (octal escapes in mountinfo) are decoded", async () => {
    const odd = path("a b\tc\\d");
    mkdirSync(odd);
    const inNamespace = (...records: string[]) =>
      new Run(["-r", "-m", "sh", "-c", 'mount -t tmpfs fim-test "$1" && shift && exec "$@"', "sh", odd, BIN, ...records], { command: ["unshare"] }).end();
    const ok = await inNamespace(...record("mounted", odd), ...record("child", "true"));
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    const sub = await inNamespace(...record("mounted", `${odd}/sub`), ...record("child", "true"));
    expect(sub.code).toBe(125);
    expect(sub.stderr).toContain(`nothing is mounted on ${odd}/sub;`);
  });
});

describe("--mount", () => {
  const inNamespace = (...records: string[]) => new Run(["-r", "-m", BIN, ...records], { command: ["unshare"] }).end();

  test("mounts with mount(2) before the child (no mount command); the child sees it", async () => {
    const target = path("target");
    mkdirSync(target);
    const result = await inNamespace(...record("mount", "tmpfs", "fim-test", "size=1m,mode=0700", target), ...record("mounted", target), ...record("child", ...sh(`grep ' ${target} ' /proc/self/mounts`)));
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toStartWith(`fim-test ${target} tmpfs rw`);
    expect(result.stdout).toContain("size=1024k,mode=700");
  });

  test("a refused mount fails the run with the kernel's reason and the steps' output; no child", async () => {
    const log = path("log");
    const missing = path("missing");
    const supervisor = new Run(["-r", "-m", BIN, "--log", log, ...record("step", ...sh("echo before")), ...record("mount", "tmpfs", "fim-test", "", missing), ...record("child", ...sh("echo child"))], { command: ["unshare"] });
    const result = await supervisor.end();
    expect(result).toMatchObject({ code: 125, stdout: "" });
    expect(result.stderr).toMatch(new RegExp(`^C::sandbox::\\d+::Could not prepare the sandbox: mounting tmpfs on ${missing} failed: No such file or directory; the steps' output:\nbefore\n$`));
  });

  test("anything but four words is a bad plan", async () => {
    const result = await run([...record("mount", "tmpfs", "x", "/tmp"), ...record("child", "true")]);
    expect(result.code).toBe(125);
    expect(result.stderr).toContain("--mount 3: it takes 4 words (type, source, options, target)");
  });
});

describe("--namespace", () => {
  test("pid 1 of its own user, mount and pid namespaces, root there, with its own /proc; its mounts stay there; the monitor ends with its status", async () => {
    const target = path("ns-target");
    mkdirSync(target);
    const result = await run([
      "--namespace",
      ...record("mount", "tmpfs", "fim-ns", "size=1m", target),
      ...record("child", ...sh(`echo "$$ $(id -u) $(id -g) $(ls /proc | grep -c '^[0-9]')"; grep -c ' ${target} ' /proc/self/mounts; exit 3`)),
    ]);
    expect(result.code).toBe(3);
    const [ids, mounted] = result.stdout.trim().split("\n");
    // The child is pid 2 (the supervisor is 1); its /proc shows the namespace's processes only.
    expect(ids).toMatch(/^2 0 0 [2-5]$/);
    expect(mounted).toBe("1");
    expect(readFileSync("/proc/self/mounts", "utf8")).not.toContain(` ${target} `);
  });

  test("a holder in its namespace: ready once its steps are, killed with its monitor", async () => {
    const lock = path("ns-guests.lock");
    const guest = openSync(lock, "w");
    flock(guest, LOCK_SH);
    const supervisor = new Run(["--namespace", "--notify", "1", "--hold", lock, ...record("step", "true")]);
    expect(await supervisor.output((out) => out.includes("\n"))).toBe("ready\n");
    const [pid1] = readFileSync(`/proc/${supervisor.proc.pid}/task/${supervisor.proc.pid}/children`, "utf8").trim().split(/\s+/).map(Number);
    expect(readFileSync(`/proc/${pid1}/status`, "utf8")).toMatch(/^NSpid:\s+\d+\s+1$/m);
    supervisor.proc.kill("SIGKILL");
    await until(() => dead(pid1!));
    closeSync(guest);
  });
});

describe("--companion", () => {
  test("companions start before the child, in their own process group, and the group gets SIGTERM when the child ends", async () => {
    const channel = fifo("companion");
    const supervisor = new Run(
      [
        ...record("companion", ...sh(`sleep 1000 & echo "$! $$ $(cut -d' ' -f5 /proc/$$/stat) $(readlink /proc/$$/fd/0) $(readlink /proc/$$/fd/1)" > ${quote(channel)}; wait`)),
        ...record("child", ...sh(`cat ${quote(channel)}`)),
      ],
      { watch: true },
    );
    const result = await supervisor.end();
    expect(result.code).toBe(0);
    const [sleeper, leader, group, stdin, stdout] = result.stdout.trim().split(" ");
    expect(group).toBe(leader!);
    expect([stdin, stdout]).toEqual(["/dev/null", "/dev/null"]);
    await supervisor.allDead();
    await until(() => dead(Number(sleeper)));
  });

  test("a companion group that ignores SIGTERM gets SIGKILL a second later", async () => {
    const channel = fifo("companion");
    const supervisor = new Run(
      [...record("companion", ...sh(`trap '' TERM; sleep 1000 & echo $! > ${quote(channel)}; wait`)), ...record("child", ...sh(`cat ${quote(channel)}`))],
      { watch: true },
    );
    const result = await supervisor.end();
    expect(result.code).toBe(0);
    await supervisor.allDead();
    await until(() => dead(Number(result.stdout)));
  });
});

describe("--after", () => {
  test("--after commands run in order once the child ended, also when it was killed; their output is discarded", async () => {
    const marks = path("marks");
    const supervisor = new Run([
      ...record("child", ...sh(`echo child >> ${quote(marks)}; echo $$; exec sleep 1000`)),
      ...record("after", ...sh(`echo after1 >> ${quote(marks)}; echo noise; echo noise >&2`)),
      ...record("after", ...sh(`echo after2 >> ${quote(marks)}`)),
    ]);
    process.kill(Number(await supervisor.line(/^\d+$/)), "SIGKILL");
    const result = await supervisor.end();
    expect(result.code).toBe(128 + 9);
    expect(result.stdout).not.toContain("noise");
    expect(result.stderr).toBe("");
    expect(readFileSync(marks, "utf8")).toBe("child\nafter1\nafter2\n");
  });
});

describe("--remove", () => {
  test("trees are removed in place, in order with the --after commands: modes forced open, symbolic links not followed", async () => {
    const [tree, outside, marks] = [path("tree"), path("outside"), path("marks")];
    mkdirSync(`${tree}/a/work/work`, { recursive: true });
    mkdirSync(outside);
    writeFileSync(`${outside}/keep`, "");
    writeFileSync(`${tree}/a/file`, "");
    Bun.spawnSync(["ln", "-s", outside, `${tree}/a/link`]);
    Bun.spawnSync(["chmod", "000", `${tree}/a/work/work`]); // as the kernel's overlay leaves it
    Bun.spawnSync(["chmod", "500", `${tree}/a`]);
    const result = await new Run([
      ...record("child", "true"),
      ...record("after", ...sh(`test -d ${quote(tree)} && echo before >> ${quote(marks)}`)),
      ...record("remove", tree, path("absent")),
      ...record("after", ...sh(`test -e ${quote(tree)} || echo after >> ${quote(marks)}`)),
    ]).end();
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(readFileSync(marks, "utf8")).toBe("before\nafter\n");
    expect(existsSync(`${outside}/keep`)).toBe(true);
  });

  test("what cannot be removed is reported, and the run's status stays the child's", async () => {
    const tree = path("tree");
    mkdirSync(`${tree}/sub`, { recursive: true });
    writeFileSync(`${tree}/sub/file`, "");
    // A directory we cannot change: /proc's, under a name that cannot be unlinked.
    const result = await new Run([...record("child", "sh", "-c", "exit 3"), ...record("remove", "/proc/self/fd", tree)]).end();
    expect(result.code).toBe(3);
    expect(result.stderr).toMatch(/^C::sandbox::\d+::Could not remove '\/proc\/self\/fd': /m);
    expect(existsSync(tree)).toBe(false);
  });
});

describe("--fresh", () => {
  test("directories are emptied (modes forced open, symbolic links not followed) or made with their parents, before the steps", async () => {
    const [used, missing, outside] = [path("used"), `${path("missing")}/a/b`, path("outside")];
    mkdirSync(`${used}/work/work`, { recursive: true });
    mkdirSync(outside);
    writeFileSync(`${outside}/keep`, "");
    writeFileSync(`${used}/file`, "");
    Bun.spawnSync(["ln", "-s", outside, `${used}/link`]);
    Bun.spawnSync(["chmod", "000", `${used}/work/work`]); // as the kernel's overlay leaves it
    const result = await new Run([
      ...record("fresh", used, missing),
      ...record("step", ...sh(`test -z "$(ls -A ${quote(used)})" && test -d ${quote(missing)}`)),
      ...record("child", "true"),
    ]).end();
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(readdirSync(used)).toEqual([]);
    expect(existsSync(`${outside}/keep`)).toBe(true);
  });

  test("one that cannot be emptied fails the run before its steps and child", async () => {
    const marks = path("marks");
    const result = await new Run([...record("fresh", "/proc/self/fd"), ...record("step", ...sh(`echo step >> ${quote(marks)}`)), ...record("child", ...sh(`echo child >> ${quote(marks)}`))]).end();
    expect(result.code).toBe(125);
    expect(result.stderr).toMatch(/^C::sandbox::\d+::Could not prepare the sandbox: could not empty '\/proc\/self\/fd': /m);
    expect(existsSync(marks)).toBe(false);
  });
});

describe("descriptors", () => {
  const probe = (who: string, fd: number) => `test -e /proc/$$/fd/${fd} && echo ${who}-has-${fd} || echo ${who}-lacks-${fd}`;

  test("--close: the supervisor keeps the descriptor, no process it starts has it", async () => {
    const plan = (log: string, channel: string) => [
      "--log", log,
      ...record("step", ...sh(probe("step", 3))),
      ...record("companion", ...sh(`{ ${probe("companion", 3)}; } > ${quote(channel)}`)),
      ...record("child", ...sh(`cat ${quote(channel)}; ${probe("child", 3)}; test -e /proc/$PPID/fd/3 && echo supervisor-has-3`)),
      ...record("after", ...sh(`{ ${probe("after", 3)}; } >> ${quote(log)}`)),
    ];
    const [openLog, closedLog] = [path("log"), path("log")];
    const open = await new Run(plan(openLog, fifo("companion")), { watch: true }).end();
    expect(open.stdout).toBe("companion-has-3\nchild-has-3\nsupervisor-has-3\n");
    expect(readFileSync(openLog, "utf8")).toBe("step-has-3\nafter-has-3\n");
    const closed = await new Run(["--close", "3", ...plan(closedLog, fifo("companion"))], { watch: true }).end();
    expect(closed.stdout).toBe("companion-lacks-3\nchild-lacks-3\nsupervisor-has-3\n");
    expect(readFileSync(closedLog, "utf8")).toBe("step-lacks-3\nafter-lacks-3\n");
  });

  test("--open: the file is open read-only at that descriptor in the child only", async () => {
    const [data, log] = [path("data"), path("log")];
    writeFileSync(data, "seccomp bytes");
    const result = await run([
      "--log", log, "--open", "7", data, "--open", "4", "/dev/null",
      ...record("step", ...sh(probe("step", 7))),
      ...record("child", ...sh(`cat <&7; echo; sed -n 's/^flags:\t//p' /proc/$$/fdinfo/7; readlink /proc/$$/fd/4`)),
    ]);
    expect(result.code).toBe(0);
    const [content, flags, other] = result.stdout.trim().split("\n");
    expect(content).toBe("seccomp bytes");
    expect(Number.parseInt(flags!, 8) & 3).toBe(0); // O_RDONLY
    expect(other).toBe("/dev/null");
    expect(readFileSync(log, "utf8")).toBe("step-lacks-7\n");
  });

  test("--open of a missing file fails the run before the child starts", async () => {
    const missing = path("missing");
    const supervisor = new Run(["--open", "5", missing, ...record("child", ...sh("echo child"))]);
    const result = await supervisor.end();
    expect(result).toMatchObject({ code: 125, stdout: "" });
    expect(result.stderr).toBe(`C::sandbox::${supervisor.proc.pid}::Could not open '${missing}' for descriptor 5: No such file or directory\n`);
  });

  test("--status is the child's descriptor 3, truncated", async () => {
    const status = path("status.json");
    writeFileSync(status, "stale content that is longer");
    const result = await run(["--status", status, ...record("child", ...sh('echo \'{ "child-pid": 42 }\' >&3'))]);
    expect(result.code).toBe(0);
    expect(readFileSync(status, "utf8")).toBe('{ "child-pid": 42 }\n');
  });
});

describe("parent death", () => {
  test("--expect-parent: a parent other than the one named ends the supervisor at once with 125", async () => {
    const marks = path("marks");
    const wrong = await run(["--expect-parent", "1", ...record("child", ...sh(`echo child > ${quote(marks)}`))]);
    expect(wrong.code).toBe(125);
    expect(wrong.stderr).toMatch(/^C::sandbox::\d+::The process that started the supervisor \(pid 1\) has ended\n$/);
    expect(existsSync(marks)).toBe(false);
    expect((await run(["--expect-parent", String(process.pid), ...record("child", ...sh("echo child"))])).stdout).toBe("child\n");
  });

  test("a supervisor killed with SIGKILL takes its child, servers and companions with it", async () => {
    const supervisor = new Run(
      [...record("ready", ...sh("echo ready; exec sleep 1000")), ...record("companion", "sleep", "1000"), ...record("child", ...sh("echo $$; exec sleep 1000"))],
      { watch: true },
    );
    const child = Number(await supervisor.line(/^\d+$/));
    supervisor.proc.kill("SIGKILL");
    await supervisor.allDead();
    await until(() => dead(child));
  });

  test("with --expect-parent, the death of that parent takes the supervisor and its child", async () => {
    const launcher = new Run(
      ["-c", `"$0" --expect-parent $$ "$@" & wait`, BIN, ...record("child", ...sh("echo $$; exec sleep 1000"))],
      { command: ["sh"], watch: true },
    );
    const child = Number(await launcher.line(/^\d+$/));
    launcher.proc.kill("SIGKILL");
    await launcher.allDead();
    await until(() => dead(child));
  });
});

describe("--hold", () => {

  test("after the child it waits for the LOCK_SH others hold, still reaping, then runs the --after commands with the lock", async () => {
    const [lock, marks, pidfile] = [path("lock"), path("marks"), path("server")];
    writeFileSync(lock, "");
    // Another run using the namespace: LOCK_SH until its stdin ends.
    const release = fifo("release");
    const other = new Run(["-s", lock, "sh", "-c", `echo locked; read line < ${quote(release)}`], { command: ["flock"] });
    await other.line(/^locked$/);
    const supervisor = new Run([
      "--hold", lock,
      ...record("ready", ...sh(`echo $$ > ${quote(pidfile)}; echo ready; exec sleep 1000`)),
      ...record("child", ...sh("echo child-done")),
      ...record("after", ...sh(`flock -n -s ${quote(lock)} true || echo lock-is-ours >> ${quote(marks)}`)),
    ]);
    await supervisor.line(/^child-done$/);
    await until(waitingForWrite(lock));
    expect(existsSync(marks)).toBe(false);
    expect(supervisor.proc.exitCode).toBe(null);
    // A process that ends meanwhile is reaped: it does not stay a zombie.
    const server = Number(readFileSync(pidfile, "utf8"));
    process.kill(server, "SIGKILL");
    await until(() => !existsSync(`/proc/${server}`));
    writeFileSync(release, "done\n");
    expect((await other.end()).code).toBe(0);
    const result = await supervisor.end();
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(readFileSync(marks, "utf8")).toBe("lock-is-ours\n");
  });

  test("without a child it holds at once, and exits when the lock is free", async () => {
    const [lock, marks] = [path("lock"), path("marks")];
    const result = await run(["--hold", lock, ...record("after", ...sh(`echo after > ${quote(marks)}`))]);
    expect(result).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(readFileSync(marks, "utf8")).toBe("after\n");
  });
});

describe("--notify (a namespace holder says when its mounts are ready)", () => {
  test("ready is written once every step is, then the holder waits for its guests", async () => {
    const [lock, marks] = [path("lock"), path("marks")];
    writeFileSync(lock, "");
    const release = fifo("release");
    const guest = new Run(["-s", lock, "sh", "-c", `echo locked; read line < ${quote(release)}`], { command: ["flock"] });
    await guest.line(/^locked$/);
    const holder = new Run(["--notify", "1", ...record("step", ...sh(`echo step >> ${quote(marks)}`)), "--hold", lock, ...record("after", ...sh(`echo after >> ${quote(marks)}`))]);
    expect(await holder.line(/^ready$/)).toBe("ready");
    expect(readFileSync(marks, "utf8")).toBe("step\n");
    await until(waitingForWrite(lock));
    writeFileSync(release, "done\n");
    expect((await guest.end()).code).toBe(0);
    expect(await holder.end()).toMatchObject({ code: 0, stdout: "ready\n" });
    expect(readFileSync(marks, "utf8")).toBe("step\nafter\n");
  });

  test("a failed step: no ready, no waiting for guests (the run that started it is told)", async () => {
    const lock = path("lock");
    writeFileSync(lock, "");
    const release = fifo("release");
    const guest = new Run(["-s", lock, "sh", "-c", `echo locked; read line < ${quote(release)}`], { command: ["flock"] });
    await guest.line(/^locked$/);
    const result = await run(["--notify", "1", ...record("step", "false"), "--hold", lock]);
    expect(result.code).toBe(125);
    expect(result.stdout).toBe("");
    expect(result.stderr).toContain("Could not prepare the sandbox: 'false' failed");
    writeFileSync(release, "done\n");
    await guest.end();
  });
});

describe("--linger (the last guest waits for the holder to end)", () => {
  test("the last holder of the shared lock waits until the given process has ended", async () => {
    const lock = path("lock");
    writeFileSync(lock, "");
    const [end, pid] = [fifo("end"), fifo("pid")];
    // A guest's supervisor with a shared lock on its own open file (fd 9), as a run keeps it.
    const child = record("child", ...sh(`read line < ${quote(end)}`)).map(quote).join(" ");
    const guest = new Run(["-c", `exec 9<${quote(lock)}; flock -s 9; echo locked; read holder < ${quote(pid)}; exec ${quote(BIN)} --close 9 --linger 9 "$holder" ${child}`], { command: ["sh"] });
    // Stands for the holder: started once the guest holds its lock, it ends when it can take it exclusively.
    await guest.line(/^locked$/);
    const holder = Bun.spawn(["flock", "-x", lock, "true"]);
    await until(waitingForWrite(lock));
    writeFileSync(pid, `${holder.pid}\n`);
    writeFileSync(end, "go\n");
    expect((await guest.end()).code).toBe(0);
    // The guest's supervisor returned only once the holder had ended.
    expect(dead(holder.pid)).toBe(true);
    expect(await holder.exited).toBe(0);
  });
});

describe("--end-orphans", () => {
  test("what the child leaves running (even in a new session) is adopted and killed once it ends", async () => {
    const result = await run(["--end-orphans", ...record("child", ...sh("setsid sleep 1000 >/dev/null 2>&1 & echo $!"))]);
    expect(result.code).toBe(0);
    const orphan = Number(result.stdout.trim());
    expect(orphan).toBeGreaterThan(0);
    expect(dead(orphan)).toBe(true);
  });

  test("when its parent dies, the child and what it left running are killed at once (none is handed to the namespace's pid 1)", async () => {
    // The parent: a shell that starts the supervisor and waits; its guest prints its background job's PID.
    const parent = Bun.spawn(["sh", "-c", '"$@" & wait', "sh", BIN, "--end-orphans", ...record("child", ...sh("sleep 1000 & echo $!; exec sleep 1000"))], { stdout: "pipe", stderr: "ignore" });
    const reader = parent.stdout.getReader();
    const orphan = Number(new TextDecoder().decode((await reader.read()).value).trim());
    expect(orphan).toBeGreaterThan(0);
    const supervisor = Number(readFileSync(`/proc/${parent.pid}/task/${parent.pid}/children`, "utf8").trim());
    const guest = Number(readFileSync(`/proc/${supervisor}/task/${supervisor}/children`, "utf8").trim());
    parent.kill("SIGKILL");
    await parent.exited;
    for (let i = 0; i < 300 && !(dead(orphan) && dead(guest) && dead(supervisor)); i++) await Bun.sleep(10);
    expect([dead(orphan), dead(guest), dead(supervisor)]).toEqual([true, true, true]);
  });

  test("without it, the orphan lives on", async () => {
    const result = await run([...record("child", ...sh("setsid sleep 1000 >/dev/null 2>&1 & echo $!"))]);
    const orphan = Number(result.stdout.trim());
    expect(dead(orphan)).toBe(false);
    process.kill(orphan, "SIGKILL");
  });
});

describe("pid 1 of a pid namespace", () => {
  test("orphans handed to it are reaped", async () => {
    const pidfile = path("orphan");
    const child = [
      `(sleep 1000 & echo $! > ${quote(pidfile)})`,
      `p=$(cat ${quote(pidfile)})`,
      `echo "parent $(cut -d' ' -f4 /proc/$p/stat)"`,
      "kill $p",
      // A zombie that pid 1 never reaps would keep this loop going until the test's timeout.
      "while [ -e /proc/$p ]; do sleep 0.01; done",
      "echo reaped",
    ].join("; ");
    const result = await new Run(["-r", "-p", "-f", "--mount-proc", BIN, ...record("child", ...sh(child))], { command: ["unshare"] }).end();
    expect(result).toMatchObject({ code: 0, stdout: "parent 1\nreaped\n", stderr: "" });
  });
});

describe("--janitor", () => {
  const session = (pid: number) => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[3]); // state ppid pgrp session
  };

  // The writer is a sleep that stands for the FUSE server; its pid and the janitor's come on stderr.
  const janitorOf = (marks: string, mountpoint = "/") => {
    const pipeline = [
      `sh -c 'echo "writer $$" >&2; echo data is not the end; exec sleep 1000' | "$0" --janitor 0 "$1" sh -c 'echo "unmount $1" > "$2"; exit 3' sh "$1" "$2" &`,
      'echo "janitor $!" >&2; wait $!',
    ].join("\n");
    return new Run(["-c", pipeline, BIN, mountpoint, marks], { command: ["sh"] });
  };
  const pids = async (shell: InstanceType<typeof Run>) => {
    const reader = shell.proc.stderr.getReader();
    let text = "";
    while (!/writer \d+\n/.test(text) || !/janitor \d+\n/.test(text)) text += new TextDecoder().decode((await reader.read()).value);
    reader.releaseLock();
    return { writer: Number(/writer (\d+)/.exec(text)![1]), janitor: Number(/janitor (\d+)/.exec(text)![1]) };
  };

  test.each(["SIGTERM", "SIGKILL"] as const)("in its own session, it waits for the end of the pipe (writer ended by %s), then runs the unmount command", async (signal) => {
    const marks = path("marks");
    const shell = janitorOf(marks);
    const { writer, janitor } = await pids(shell);
    try {
      await until(() => session(janitor) === janitor);
      expect(existsSync(marks)).toBe(false);
    } finally {
      process.kill(writer, signal);
    }
    expect(await shell.proc.exited).toBe(3);
    expect(readFileSync(marks, "utf8")).toBe("unmount /\n");
  });

  test("nothing is run when the mount point is no longer mounted", async () => {
    const marks = path("marks");
    const janitor = Bun.spawn([BIN, "--janitor", "0", dir, "sh", "-c", `echo ran > ${quote(marks)}`], { stdin: "pipe" });
    janitor.stdin.end();
    expect(await janitor.exited).toBe(0);
    expect(existsSync(marks)).toBe(false);
  });
});

describe("bad plans", () => {
  test.each([
    [["--frobnicate"], "unknown option '--frobnicate'"],
    [["--child", "3", "true"], "--child 3: the count is beyond the end of the plan (1 words follow)"],
    [["--child", "x", "true"], "--child takes a number, not 'x'"],
    [["--child", "-1", "true"], "--child takes a number, not '-1'"],
    [["--child", "0"], "--child 0: a program is needed"],
    [["--child", "1", "true", "--child", "1", "true"], "two --child records (one guest per run)"],
    [["--child", "1", "true", "--log"], "--log needs an argument"],
    [["--log", "a", "--log", "b", "--child", "1", "true"], "--log is given twice"],
    [["--open", "5"], "--open needs two arguments"],
    [["--close", "1", "--child", "1", "true"], "--close 1: the standard descriptors are set for each process"],
    [["--status", "s", "--open", "3", "f", "--child", "1", "true"], "--open 3 and --status both want descriptor 3"],
    [["--companion", "1", "true", "--hold", "lock"], "--companion runs beside a --child, and there is none"],
    [[], "no --child (and no --hold)"],
    [["--step", "1", "true"], "no --child (and no --hold)"],
    [["--janitor", "0"], "--janitor needs FD MOUNTPOINT UNMOUNT_ARGV..."],
    [["--janitor", "999", "/", "true"], "--janitor 999: descriptor 999 is not open"],
  ])("%p", async (args, message) => {
    expect(await run(args)).toEqual({ code: 125, stdout: "", stderr: `fim_supervise: bad plan: ${message}\n` });
  });

  test("nothing runs when the plan is bad", async () => {
    const marks = path("marks");
    expect((await run([...record("step", "touch", marks), ...record("child", "true"), "--bogus"])).code).toBe(125);
    expect(existsSync(marks)).toBe(false);
  });
});
