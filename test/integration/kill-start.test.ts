// SIGKILL of the launcher at any moment of a start leaves no guest and no mount: every link
// (supervisor, namespace holder, fim_enter, the guest's supervisor, bwrap) dies with its
// parent or ends with its last guest.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { freshImage, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const STARTS = 100;

function commandLines(): [number, string][] {
  const found: [number, string][] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      found.push([Number(name), readFileSync(`/proc/${name}/cmdline`, "latin1")]);
    } catch {
      // gone
    }
  }
  return found;
}

/** Processes of this test's image: its guests, and anything naming its directory (holders, FUSE servers). */
const leftovers = (marker: string) => commandLines().filter(([pid, line]) => pid !== process.pid && (line.includes(marker) || line.includes(image.dir)));

test(`SIGKILL of the launcher at random moments of ${STARTS} starts leaves no guest, no holder and no mount`, async () => {
  const marker = `fim-kill-start-${process.pid}`;
  // How long a start takes here, so the kills cover all of it (and a little after).
  const durations = [0, 1, 2].map(() => {
    const begin = performance.now();
    expect(image.run(["fim-exec", "true"]).code).toBe(0);
    return performance.now() - begin;
  });
  const span = 1.5 * durations.sort((a, b) => a - b)[1]!;
  // One kill in each of STARTS equal slices of the span, at a random moment of the slice, in random order.
  const delays = Array.from({ length: STARTS }, (_, i) => ((i + Math.random()) * span) / STARTS).sort(() => Math.random() - 0.5);
  for (const delay of delays) {
    const child = Bun.spawn([image.path, "fim-exec", "sh", "-c", `exec sleep 1000 ${marker}`], { stdout: "ignore", stderr: "ignore" });
    await Bun.sleep(delay);
    child.kill("SIGKILL");
    await child.exited;
  }
  // What dies with its parent dies at once; a holder ends as soon as its last guest has.
  for (let i = 0; i < 500 && leftovers(marker).length > 0; i++) await Bun.sleep(10);
  expect(leftovers(marker).map(([pid, line]) => `${pid}: ${line.replaceAll("\0", " ")}`)).toEqual([]);
  expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(image.dir);
  // And the image still starts.
  expect(image.run(["fim-exec", "true"]).code).toBe(0);
}, 120_000);
