// fim_sigdfl (toolset/src/fim_sigdfl.c): how the runtime starts a program with the default
// signal dispositions, and (--die-with-parent) bound to the life of the process that starts it.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isRunning } from "../helpers/proc.ts";

const BIN = join(import.meta.dir, "../../toolset/out/x86_64/bin/fim_sigdfl");
if (!existsSync(BIN)) throw new Error(`${BIN} is missing: build the tool set (toolset/build.sh)`);
const dir = mkdtempSync(join(tmpdir(), "fim-sigdfl-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("an ignored signal is the default again in the program", () => {
  // The shell ignores SIGINT, and a non-interactive shell cannot undo that for its children.
  const script = `trap '' INT; ${BIN} sh -c 'kill -INT $$; echo survived'; echo "status $?"`;
  expect(Bun.spawnSync(["sh", "-c", script]).stdout.toString()).toBe(`status ${128 + 2}\n`);
  expect(Bun.spawnSync(["sh", "-c", `trap '' INT; sh -c 'kill -INT $$; echo survived'`]).stdout.toString()).toBe("survived\n");
});

test("--die-with-parent: the program keeps the process's PID and is killed when the parent ends", async () => {
  // A shell starts it and prints its PID, then is killed with SIGKILL.
  const parent = Bun.spawn(["sh", "-c", `${BIN} --die-with-parent $$ sleep 60 & echo $!; wait`], { stdout: "pipe" });
  const reader = parent.stdout.getReader();
  const pid = Number(new TextDecoder().decode((await reader.read()).value).trim());
  for (let i = 0; i < 200 && !(await Bun.file(`/proc/${pid}/cmdline`).text().catch(() => "")).startsWith("sleep"); i++) await Bun.sleep(5);
  expect((await Bun.file(`/proc/${pid}/cmdline`).text()).split("\0")).toEqual(["sleep", "60", ""]);
  parent.kill("SIGKILL");
  await parent.exited;
  for (let i = 0; i < 200 && isRunning(pid); i++) await Bun.sleep(5);
  expect(isRunning(pid)).toBe(false);
});

test("--die-with-parent leaves the inherited dispositions (a nohup'd commit keeps SIGHUP ignored)", () => {
  const script = `trap '' HUP; ${BIN} --die-with-parent $$ sh -c 'kill -HUP $$; echo survived'`;
  expect(Bun.spawnSync(["sh", "-c", script]).stdout.toString()).toBe("survived\n");
});

test("--die-with-parent: nothing runs when the parent named is not the parent (it has ended)", () => {
  const marker = join(dir, "ran");
  const result = Bun.spawnSync([BIN, "--die-with-parent", "1", "touch", marker]);
  expect(result.exitCode).toBe(127);
  expect(existsSync(marker)).toBe(false);
  const own = Bun.spawnSync([BIN, "--die-with-parent", String(process.pid), "touch", marker]);
  expect(own.exitCode).toBe(0);
  expect(existsSync(marker)).toBe(true);
});

test("bad arguments and a missing program say so", () => {
  const bad = Bun.spawnSync([BIN, "--die-with-parent", "x1", "true"], { stderr: "pipe" });
  expect([bad.exitCode, bad.stderr.toString()]).toEqual([127, "fim_sigdfl: --die-with-parent takes a process id, not 'x1'\n"]);
  const none = Bun.spawnSync([BIN, "--die-with-parent", String(process.pid)], { stderr: "pipe" });
  expect([none.exitCode, none.stderr.toString()]).toEqual([127, "usage: fim_sigdfl [--die-with-parent PID] <program> [args...]\n"]);
  const missing = Bun.spawnSync([BIN, join(dir, "absent")], { stderr: "pipe" });
  expect([missing.exitCode, missing.stderr.toString()]).toEqual([127, `fim_sigdfl: ${join(dir, "absent")}: No such file or directory\n`]);
});
