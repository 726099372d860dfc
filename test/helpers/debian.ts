// The debian test image: built under .cache/test for the run (seconds once the root
// filesystem layer is cached; the first build runs debootstrap as root). A user who cannot
// write there (fimtest in root's checkout) builds a private one, or else uses root's.
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { writable } from "../../scripts/rootfs.ts";
import { buildImage, ROOT, type RunResult } from "./image.ts";

const CACHED = join(ROOT, ".cache/test/debian.flatimage");

/** The image's path and what to remove afterwards. */
export function debianImage(): { path: string; cleanup(): void } {
  if (writable(dirname(CACHED))) {
    buildImage("debian", CACHED);
    return { path: CACHED, cleanup() {} };
  }
  const dir = mkdtempSync(join(tmpdir(), "fim-test-debian-"));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    buildImage("debian", join(dir, "debian.flatimage"));
    return { path: join(dir, "debian.flatimage"), cleanup };
  } catch (error) {
    cleanup();
    if (existsSync(CACHED)) return { path: CACHED, cleanup() {} };
    throw error;
  }
}

/** Fails with the command's output, not just its exit code. */
export function succeeded(result: RunResult, what: string): RunResult {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}
