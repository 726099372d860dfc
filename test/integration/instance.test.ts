// fim-instance list and exec: running instances of an image, and commands run inside them.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import { flock, LOCK_SH, tryLockExclusive } from "../../core/libc.ts";
import { join } from "node:path";
import { expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
const me = process.getuid!();
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

async function started(child: ReturnType<typeof Bun.spawn>): Promise<void> {
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  expect(new TextDecoder().decode((await reader.read()).value)).toBe("ready\n");
  reader.releaseLock();
}

describe("fim-instance", () => {
  test("two background runs are listed; exec runs inside each with its identity", async () => {
    const user = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; echo mine > /tmp/../etc/instance-a; sleep 30"], { stdout: "pipe", stderr: "inherit" });
    // Another data directory: its own writable root (the file written above is not there).
    const rooted = Bun.spawn([image.path, "fim-root", "sh", "-c", "echo ready; sleep 30"], { stdout: "pipe", stderr: "inherit", env: { ...process.env, FIM_DIR_DATA: join(image.dir, "data-b") } });
    try {
      // Each is an instance once its guest runs.
      await Promise.all([started(user), started(rooted)]);
      // Instances of the same build are listed together (another test's may still be ending).
      const listed = image.run(["fim-instance", "list"]).stdout.trim().split("\n").filter((line) => line !== "");
      const ours = listed.filter((line) => [user.pid, rooted.pid].includes(Number(line.split(":")[1])));
      expect(ours.map((line) => Number(line.split(":")[1]))).toEqual([Math.min(user.pid, rooted.pid), Math.max(user.pid, rooted.pid)]);
      expect(listed.map((line) => Number(line.split(":")[0]))).toEqual(listed.map((_, index) => index));
      const index = (pid: number) => listed.find((line) => Number(line.split(":")[1]) === pid)!.split(":")[0]!;
      const ids = { user: index(user.pid), rooted: index(rooted.pid) };
      expect(image.run(["fim-instance", "exec", ids.user, "id", "-u"]).stdout).toBe(`${me}\n`);
      expect(image.run(["fim-instance", "exec", ids.rooted, "id", "-u"]).stdout).toBe("0\n");
      // Inside the instance's own sandbox: its files, its pid namespace.
      expect(image.run(["fim-instance", "exec", ids.user, "cat", "/etc/instance-a"]).stdout).toBe("mine\n");
      expect(image.run(["fim-instance", "exec", ids.rooted, "cat", "/etc/instance-a"]).code).not.toBe(0);
      expect(image.run(["fim-instance", "exec", ids.user, "sh", "-c", "exit 5"]).code).toBe(5);
      expect(image.run(["fim-instance", "exec", ids.user, "tr", "a-z", "A-Z"], { stdin: "through\n" }).stdout).toBe("THROUGH\n");
      const outOfBounds = image.run(["fim-instance", "exec", String(listed.length + 5), "true"]);
      expect(outOfBounds.code).toBe(125);
      expect(lines(outOfBounds.stderr)).toEqual(["C::Instance index out of bounds", "C::The program exited with an error"]);
    } finally {
      user.kill();
      rooted.kill();
      await Promise.all([user.exited, rooted.exited]);
    }
    expect(image.run(["fim-instance", "list"]).stdout).toBe("");
    const none = image.run(["fim-instance", "exec", "0", "true"]);
    expect(none.code).toBe(125);
    expect(lines(none.stderr)).toEqual(["C::No instances are running", "C::The program exited with an error"]);
  }, 60_000);

  test("the record of a launcher killed with SIGKILL is never listed, and is swept", async () => {
    const run = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; sleep 30"], { stdout: "pipe", stderr: "inherit" });
    await started(run);
    expect(image.run(["fim-instance", "list"]).stdout).toBe(`0:${run.pid}\n`);
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const alive = join(image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length), "instance", String(run.pid), ".alive");
    image.run(["fim-env", "clear"]);
    // The run's supervisor (the launcher after its hand-over) holds its directory's lock.
    const probe = openSync(alive, "r");
    expect(tryLockExclusive(probe)).toBe(false);
    closeSync(probe);
    run.kill(9);
    await run.exited;
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const app = image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length);
    image.run(["fim-env", "clear"]);
    expect(require("node:fs").existsSync(join(app, "instance", String(run.pid), "instance.json"))).toBe(true);
    expect(image.run(["fim-instance", "list"]).stdout).toBe("");
    expect(require("node:fs").existsSync(join(app, "instance", String(run.pid)))).toBe(false);
  });

  test("the directory of a start killed before it became an instance goes with the next start", () => {
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const app = image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length);
    image.run(["fim-env", "clear"]);
    const gone = Bun.spawnSync(["true"]).pid; // a PID whose process has ended
    const left = join(app, "instance", String(gone));
    mkdirSync(join(left, "guest"), { recursive: true });
    writeFileSync(join(left, "guest", "passwd"), "");
    const mine = join(app, "instance", String(process.pid)); // alive: kept
    mkdirSync(mine, { recursive: true });
    expect(image.run(["fim-exec", "true"]).code).toBe(0);
    expect(require("node:fs").existsSync(left)).toBe(false);
    expect(require("node:fs").existsSync(mine)).toBe(true);
    rmSync(mine, { recursive: true });
  });

  test("the directory of a run whose lock is held (a run of another PID namespace) is kept; once the lock is free, swept", () => {
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const app = image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length);
    image.run(["fim-env", "clear"]);
    // Its PID names no process here, as a run's of another PID namespace would not.
    const other = join(app, "instance", String(Bun.spawnSync(["true"]).pid));
    mkdirSync(other, { recursive: true });
    const lock = openSync(join(other, ".alive"), "w");
    try {
      flock(lock, LOCK_SH);
      expect(image.run(["fim-exec", "true"]).code).toBe(0);
      expect(image.run(["fim-instance", "list"]).stdout).toBe("");
      expect(existsSync(other)).toBe(true);
    } finally {
      closeSync(lock);
    }
    expect(image.run(["fim-exec", "true"]).code).toBe(0);
    expect(existsSync(other)).toBe(false);
  });

  test("a stale instance directory (its PID reused by another process) is not listed", () => {
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const app = image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length);
    image.run(["fim-env", "clear"]);
    const stale = join(app, "instance", String(process.pid)); // alive, but not an instance
    mkdirSync(stale, { recursive: true });
    writeFileSync(join(stale, "instance.json"), JSON.stringify({ started: "1", root: false }));
    expect(image.run(["fim-instance", "list"]).stdout).toBe("");
  });

  test("parse errors", () => {
    expectParseError(image, ["fim-instance"], "Missing op for 'fim-instance' (<exec|list>)");
    expectParseError(image, ["fim-instance", "kill"], "Invalid instance operation 'kill' (one of: exec, list)");
    expectParseError(image, ["fim-instance", "none"], "Invalid instance operation");
    expectParseError(image, ["fim-instance", "exec"], "Missing 'id' argument for 'fim-instance'");
    expectParseError(image, ["fim-instance", "exec", "-1", "true"], "Id argument must be a digit");
    expectParseError(image, ["fim-instance", "exec", "foo", "true"], "Id argument must be a digit");
    expectParseError(image, ["fim-instance", "exec", "0"], "Missing 'cmd' argument for 'fim-instance'");
    expectParseError(image, ["fim-instance", "exec", "99999999999999999999", "true"], "Invalid instance ID");
    expectParseError(image, ["fim-instance", "list", "x"], "Trailing arguments for fim-instance: ['x',]");
  });
});

describe("one data directory, two runs", () => {
  test("the second run joins the first one's mounts at once and runs", async () => {
    const first = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; sleep 1.5"], { stdout: "pipe", stderr: "inherit" });
    await started(first);
    const second = image.run(["fim-exec", "echo", "second"]);
    expect(second).toEqual({ code: 0, stdout: "second\n", stderr: "" });
    expect(await first.exited).toBe(0);
  }, 30_000);
});
