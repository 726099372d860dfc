// The gpu permission binds the host's NVIDIA driver files into the guest, read-only at their
// usual paths (never a host root view), and only while it is granted.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, type TestImage } from "../helpers/image.ts";

const root = process.getuid!() === 0;
const LIBS = "/usr/lib/x86_64-linux-gnu";
const fake = `${LIBS}/libnvidia-fimtest-${process.pid}.so.1`;
const skipped = `${LIBS}/libnvidia-gst-fimtest-${process.pid}.so.1`;
let image: TestImage;

beforeAll(() => {
  image = freshImage();
  // Only root can put a fake driver file where the host's would be.
  if (root) {
    writeFileSync(fake, "driver\n");
    writeFileSync(skipped, "gstreamer plugin\n");
  }
});
afterAll(() => {
  image.cleanup();
  if (root) for (const file of [fake, skipped]) rmSync(file, { force: true });
});

test("gpu: /dev/dri bound; driver files bound read-only at their paths, only while granted", () => {
  image.run(["fim-perms", "set", "gpu"]);
  const probe = `test -e /dev/dri && echo dri || echo no-dri; test -L ${fake} && echo link || echo file; cat ${fake}; echo x > ${fake} 2>/dev/null || echo read-only; test -e ${skipped} && echo linked || echo not-linked`;
  const out = image.run(["fim-exec", "sh", "-c", probe]);
  expect(out.code).toBe(0);
  const lines = out.stdout.split("\n");
  expect(lines[0]).toBe(existsSync("/dev/dri") ? "dri" : "no-dri");
  if (root) {
    expect(lines.slice(1, 5)).toEqual(["file", "driver", "read-only", "not-linked"]);
    // Nothing was written into the data directory (upstream left the links there, to be committed).
    expect(existsSync(join(image.dir, `.app.flatimage.data/root${fake}`))).toBe(false);
  }
  image.run(["fim-perms", "clear"]);
  if (root) expect(image.run(["fim-exec", "sh", "-c", `test -e ${fake} && echo yes || echo no`]).stdout).toBe("no\n");
});
