// A start beside a running instance replays the plan an earlier start made (fim_stub.c,
// "replay"; plugins/sandbox/replay.ts) when nothing it depends on changed, without the
// launcher, and behaves exactly as that start did; anything that changed, and it plans anew.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, chmodSync, existsSync, readdirSync, readFileSync, renameSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { privateRuntimeDir } from "../helpers/boot.ts";
import { freshImage, type RunResult, type TestImage } from "../helpers/image.ts";

let image: TestImage;
let xdg: { dir: string; cleanup(): void };
let env: Record<string, string>;
let holder: ReturnType<typeof Bun.spawn>;

/** Starts the instance the runs join, and waits for its guest's first line. */
async function startInstance(): Promise<void> {
  holder = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; read line"], { stdout: "pipe", stderr: "ignore", stdin: "pipe", env: { ...process.env, ...env }, cwd: image.dir });
  const reader = (holder.stdout as ReadableStream<Uint8Array>).getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
  reader.releaseLock();
}

async function stopInstance(): Promise<void> {
  const stdin = holder.stdin as import("bun").FileSink;
  stdin.write("go\n");
  stdin.end();
  expect(await holder.exited).toBe(0);
}

beforeAll(async () => {
  image = freshImage();
  xdg = privateRuntimeDir();
  env = { XDG_RUNTIME_DIR: xdg.dir };
  await startInstance();
});

afterAll(async () => {
  await stopInstance();
  image.cleanup();
  xdg.cleanup();
});

const run = (args: string[], extra: Record<string, string> = {}, cwd = image.dir): RunResult => image.run(args, { env: { ...env, ...extra }, cwd });
const debugRun = (args: string[], extra: Record<string, string> = {}, cwd = image.dir) => run(args, { FIM_DEBUG: "1", ...extra }, cwd);
const replayed = (result: RunResult) => result.stdout.includes("::Replaying the plan of an earlier start");
const build = () => join(xdg.dir, "fim/app", readdirSync(join(xdg.dir, "fim/app"))[0]!);
/** A run's output with what differs between any two runs (its PID, its instance directory) taken out. */
const normal = (text: string, pid: string) => text.replaceAll(`/instance/${pid}`, "/instance/N").replaceAll(`::${pid}::`, "::N::").replaceAll(`FIM_PID=${pid}`, "FIM_PID=N").replaceAll(`pid=${pid}`, "pid=N");

describe("a start beside a running instance replays an earlier start's plan", () => {
  test("the first join plans and keeps its plan; the next replays it, with the same output, exit code and guest", () => {
    const script = 'echo "pid=$FIM_PID"; env | sort; id; ulimit -n; cat /etc/passwd | tail -1; grep -E "^(Sig|Cap|NoNewPrivs|Seccomp)" /proc/self/status; ls /proc/self/fd; echo err >&2; exit 7';
    const results = [0, 1, 2].map(() => run(["fim-exec", "sh", "-c", script]));
    const pids = results.map((result) => /^pid=(\d+)$/m.exec(result.stdout)![1]!);
    for (const [index, result] of results.entries()) {
      expect(result.code).toBe(7);
      expect(result.stderr).toContain("err\n");
      expect(normal(result.stdout, pids[index]!)).toBe(normal(results[0]!.stdout, pids[0]!));
      expect(normal(result.stderr, pids[index]!)).toBe(normal(results[0]!.stderr, pids[0]!));
    }
    // The same again with the debug trace on (its own record): the third start replays.
    const traced = [0, 1, 2].map(() => debugRun(["fim-exec", "true"]));
    expect(traced.map(replayed)).toEqual([false, true, true]);
    expect(traced.every((result) => result.code === 0)).toBe(true);
  });

  test("a replayed start does not run the launcher at all, and is listed as an instance", () => {
    expect(run(["fim-exec", "echo", "listed"]).stdout).toBe("listed\n"); // planned and kept
    // Set aside for a file of its size (the stub takes it as extracted) that no loader can run, as root either.
    const launcher = join(build(), "bin/fim_boot");
    renameSync(launcher, `${launcher}.kept`);
    writeFileSync(launcher, "");
    truncateSync(launcher, statSync(`${launcher}.kept`).size);
    chmodSync(launcher, 0o755);
    try {
      expect(run(["fim-exec", "echo", "listed"]).stdout).toBe("listed\n");
      const planned = run(["fim-exec", "echo", "planned"]); // not recorded: the launcher is needed, and cannot run
      expect(planned.code).not.toBe(0);
    } finally {
      renameSync(`${launcher}.kept`, launcher);
    }
    expect(run(["fim-instance", "list"]).stdout.trim().split("\n")).toHaveLength(1);
  });

  test("another environment, working directory, umask or command line plans anew", () => {
    expect(debugRun(["fim-exec", "true"]).code).toBe(0);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    expect(replayed(debugRun(["fim-exec", "true"], { SOME_VARIABLE: "1" }))).toBe(false);
    expect(replayed(debugRun(["fim-exec", "true"], {}, "/"))).toBe(false);
    expect(replayed(debugRun(["fim-exec", "true", "x"]))).toBe(false);
    const masked = () =>
      Bun.spawnSync(["sh", "-c", 'umask 077; exec "$0" "$@"', image.path, "fim-exec", "true"], { env: { ...process.env, ...env, FIM_DEBUG: "1" }, cwd: image.dir, stdout: "pipe", stderr: "pipe" });
    expect(masked().stdout.toString()).not.toContain("::Replaying the plan");
    expect(masked().stdout.toString()).toContain("::Replaying the plan"); // its own record
  });

  test("what a desktop sets anew at each start reaches the guest as given, and a launcher started again replays", () => {
    const show = 'echo "pid=$FIM_PID id=[$DESKTOP_STARTUP_ID] token=[$XDG_ACTIVATION_TOKEN] gio=[$GIO_LAUNCHED_DESKTOP_FILE_PID]"';
    // As GLib launches: its PID variable is the launched process's own, the launcher's.
    const click = (extra: Record<string, string>) => {
      const result = Bun.spawnSync(["sh", "-c", 'GIO_LAUNCHED_DESKTOP_FILE_PID=$$ exec "$0" "$@"', image.path, "fim-exec", "sh", "-c", show], {
        env: { ...process.env, ...env, FIM_DEBUG: "1", ...extra },
        cwd: image.dir,
        stdout: "pipe",
        stderr: "pipe",
      });
      const stdout = result.stdout.toString();
      const pid = /^pid=(\d+) /m.exec(stdout)![1]!;
      return { code: result.exitCode, stdout, stderr: result.stderr.toString(), pid, line: stdout.split("\n").find((line) => line.startsWith("pid="))! };
    };
    const first = click({ DESKTOP_STARTUP_ID: "startup-1", XDG_ACTIVATION_TOKEN: "token-1" });
    expect(first.code).toBe(0);
    expect(replayed(first)).toBe(false); // the first join of this command line
    expect(first.line).toBe(`pid=${first.pid} id=[startup-1] token=[token-1] gio=[${first.pid}]`);
    const second = click({ DESKTOP_STARTUP_ID: "startup-2", XDG_ACTIVATION_TOKEN: "token-2" });
    expect(replayed(second)).toBe(true);
    expect(second.line).toBe(`pid=${second.pid} id=[startup-2] token=[token-2] gio=[${second.pid}]`);
    const none = click({});
    expect(replayed(none)).toBe(true);
    expect(none.line).toBe(`pid=${none.pid} id=[] token=[] gio=[${none.pid}]`);
    // The record holds no start's own values.
    for (const name of readdirSync(join(build(), "replays"))) expect(readFileSync(join(build(), "replays", name), "latin1")).not.toContain("startup-1");
  });

  test("a change of what the plan read (here the data directory's root) or of the image plans anew", () => {
    expect(debugRun(["fim-exec", "true"]).code).toBe(0);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    writeFileSync(join(image.dir, ".app.flatimage.data/root/new-entry"), "x");
    const changed = debugRun(["fim-exec", "true"]);
    expect(replayed(changed)).toBe(false);
    expect(changed.stdout).toContain(".app.flatimage.data/root' changed since the plan was made");
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
  });

  test("a stored $(…) runs once per run: such a run is never replayed", () => {
    const counter = join(image.dir, "substitutions");
    expect(run(["fim-env", "add", `COUNTED=$(echo x >> ${counter}; echo y)`]).code).toBe(0);
    // The image changed: the instance keeps running, later starts join it with the new environment.
    try {
      for (let i = 0; i < 4; i++) expect(run(["fim-exec", "sh", "-c", 'echo "$COUNTED"']).stdout).toBe("y\n");
      expect(readFileSync(counter, "utf8")).toBe("x\nx\nx\nx\n");
    } finally {
      expect(run(["fim-env", "clear"]).code).toBe(0);
    }
  });

  test("a record that others may write, or that is not the start's, is not replayed", () => {
    expect(debugRun(["fim-exec", "true"]).code).toBe(0);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    const dir = join(build(), "replays");
    for (const name of readdirSync(dir)) chmodSync(join(dir, name), 0o666);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(false);
    // Planned again: the record is written anew (mode 0600), and replayed.
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    for (const name of readdirSync(dir)) appendFileSync(join(dir, name), "x");
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(false);
  });

  test("SIGKILL of joining starts, replayed or planned, at random moments leaves no guest behind, and the instance runs on", async () => {
    // A duration no other process uses names the guests (busybox's sleep takes numbers only).
    const duration = String(700_000 + (process.pid % 100_000));
    const marker = `sleep\0${duration}\0`;
    const guests = () =>
      readdirSync("/proc").filter((name) => {
        try {
          return /^\d+$/.test(name) && readFileSync(`/proc/${name}/cmdline`, "latin1").includes(marker);
        } catch {
          return false;
        }
      });
    const start = (extra: Record<string, string> = {}) =>
      Bun.spawn([image.path, "fim-exec", "sh", "-c", `exec sleep ${duration}`], { stdout: "ignore", stderr: "ignore", env: { ...process.env, ...env, ...extra }, cwd: image.dir });
    const gone = async () => {
      for (let i = 0; i < 300 && guests().length > 0; i++) await Bun.sleep(10);
      expect(guests()).toEqual([]);
    };
    // Planned once (the guest appears), and kept.
    const first = start();
    for (let i = 0; i < 500 && guests().length === 0; i++) await Bun.sleep(10);
    first.kill("SIGKILL");
    await first.exited;
    await gone();
    // A replayed start takes a few milliseconds: the kills cover 0-30 ms, one per slice.
    const delays = Array.from({ length: 30 }, (_, i) => i + Math.random()).sort(() => Math.random() - 0.5);
    for (const delay of delays) {
      const child = start();
      await Bun.sleep(delay);
      child.kill("SIGKILL");
      await child.exited;
    }
    await gone();
    // And joins the launcher plans (each environment its own: nothing to replay), over 0-60 ms.
    for (const [index, delay] of delays.entries()) {
      const child = start({ PLANNED_ANEW: String(index) });
      await Bun.sleep(2 * delay);
      child.kill("SIGKILL");
      await child.exited;
    }
    await gone();
    expect(debugRun(["fim-exec", "true"]).code).toBe(0);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    expect(run(["fim-exec", "echo", "alive"]).stdout).toBe("alive\n");
  }, 60_000);

  test("a build keeps at most 64 records, the most recently written", () => {
    for (let i = 0; i < 70; i++) expect(debugRun(["fim-exec", "true"], { CHANGES_AT_EACH_START: String(i) }).code).toBe(0);
    expect(readdirSync(join(build(), "replays")).length).toBe(64);
    expect(replayed(debugRun(["fim-exec", "true"], { CHANGES_AT_EACH_START: "69" }))).toBe(true);
    expect(replayed(debugRun(["fim-exec", "true"], { CHANGES_AT_EACH_START: "0" }))).toBe(false);
  }, 60_000);

  test("when the instance it joined has ended, a start mounts again, and the next join replays again", async () => {
    expect(debugRun(["fim-exec", "true"]).code).toBe(0);
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    await stopInstance();
    const alone = debugRun(["fim-exec", "true"]);
    expect(alone.code).toBe(0);
    expect(replayed(alone)).toBe(false);
    await startInstance();
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(false); // joins the new holder, and keeps that plan
    expect(replayed(debugRun(["fim-exec", "true"]))).toBe(true);
    expect(existsSync(join(build(), "instance"))).toBe(true);
  });
});
