// Test images: the blueprint image is built once per test run (scripts/test.sh builds it
// first; a bare `bun test` builds it on demand) and copied into a private directory per test.
import { spawnSync } from "bun";
import { expect } from "bun:test";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "../..");
export const TEST_IMAGE = process.env.FIM_TEST_IMAGE ?? join(ROOT, ".cache/test/blueprint.flatimage");

export function buildImage(bundle: string, out: string, extra: string[] = []): void {
  const result = spawnSync([process.execPath, join(ROOT, "scripts/build.ts"), bundle, "--out", out, ...extra], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`build of ${bundle} failed:\n${result.stderr.toString()}`);
}

export function ensureTestImage(): string {
  if (!existsSync(TEST_IMAGE)) {
    mkdirSync(join(TEST_IMAGE, ".."), { recursive: true });
    buildImage("blueprint", TEST_IMAGE);
  }
  return TEST_IMAGE;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestImage {
  dir: string;
  path: string;
  run(args: string[], options?: { env?: Record<string, string | undefined>; stdin?: string; cwd?: string }): RunResult;
  cleanup(): void;
}

/** A private copy of the test image in its own directory. */
export function freshImage(source = ensureTestImage(), name = "app.flatimage"): TestImage {
  const dir = mkdtempSync(join(tmpdir(), "fim-test-"));
  chmodSync(dir, 0o755);
  const path = join(dir, name);
  copyFileSync(source, path);
  chmodSync(path, 0o755);
  return {
    dir,
    path,
    run(args, options = {}) {
      const env: Record<string, string> = {};
      for (const [key, value] of Object.entries({ ...process.env, ...options.env })) if (value !== undefined) env[key] = value;
      const result = spawnSync([path, ...args], {
        env,
        cwd: options.cwd ?? dir,
        stdin: options.stdin !== undefined ? Buffer.from(options.stdin) : "ignore",
        stdout: "pipe",
        stderr: "pipe",
      });
      return { code: result.exitCode ?? 128 + (result.signalCode ? 9 : 0), stdout: result.stdout.toString(), stderr: result.stderr.toString() };
    },
    cleanup() {
      // A run killed with SIGKILL leaves its overlay work directory (mode 000) until the next run.
      spawnSync(["chmod", "-R", "u+rwx", dir], { stderr: "ignore" });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Strips the `L::tag::pid::` prefix, keeping the level: `C::msg`. */
export function lines(text: string): string[] {
  return text
    .split("\n")
    .filter((line) => line !== "")
    .map((line) => line.replace(/^([DIWEC])::[^:]*::\d+::/, "$1::"));
}

/** A parse error: the messages at C level, then the two closing lines, exit 125, nothing on stdout. */
export function expectParseError(image: TestImage, args: string[], ...messages: string[]): void {
  const result = image.run(args);
  expect(result.code).toBe(125);
  expect(result.stdout).toBe("");
  expect(lines(result.stderr)).toEqual([...messages.map((m) => `C::${m}`), "C::Could not parse arguments", "C::The program exited with an error"]);
}

/** An execution error: the messages at E level, then the closing line, exit 125. */
export function expectExecError(image: TestImage, args: string[], ...messages: string[]): void {
  const result = image.run(args);
  expect(result.code).toBe(125);
  expect(lines(result.stderr)).toEqual([...messages.map((m) => `E::${m}`), "C::The program exited with an error"]);
}
