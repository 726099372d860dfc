// Progress of long work: redrawn in place on a terminal, a line every LINE_EVERY_MS otherwise
// (and nothing at all for work that ends before the first one), on a clock the test turns.
import { expect, test } from "bun:test";
import { LINE_EVERY_MS, percent, Progress } from "../../core/progress.ts";

function run(terminal: boolean) {
  let clock = 1000;
  let done = 0;
  const drawn: string[] = [];
  const said: string[] = [];
  const bar = new Progress("Erasing", () => `${percent(done, 10, done === 10)} (${done} of 10 entries)`, (line) => said.push(line), {
    terminal,
    now: () => clock,
    draw: (text) => drawn.push(text),
  });
  return {
    drawn,
    said,
    step(ms: number) {
      clock += ms;
      done++;
      bar.tick();
    },
    end: () => bar.end(),
  };
}

test("on a terminal: drawn at once, redrawn at most every 200 ms, ended with a newline", () => {
  const p = run(true);
  expect(p.drawn).toEqual(["\rErasing: 0% (0 of 10 entries) (0 s)\x1b[K"]);
  p.step(50); // too soon
  p.step(200);
  expect(p.drawn).toEqual(["\rErasing: 0% (0 of 10 entries) (0 s)\x1b[K", "\rErasing: 20% (2 of 10 entries) (0 s)\x1b[K"]);
  for (let i = 0; i < 8; i++) p.step(1000);
  p.end();
  expect(p.drawn.slice(-2)).toEqual(["\rErasing: 100% (10 of 10 entries) (8 s)\x1b[K", "\n"]);
  expect(p.said).toEqual([]);
});

test("elsewhere: a line every few seconds and a last one, nothing drawn", () => {
  const p = run(false);
  p.step(LINE_EVERY_MS - 1);
  expect(p.said).toEqual([]);
  p.step(1);
  p.step(LINE_EVERY_MS);
  p.step(10);
  p.end();
  expect(p.said).toEqual(["Erasing: 20% (2 of 10 entries) (5 s)", "Erasing: 30% (3 of 10 entries) (10 s)", "Erasing: 40% (4 of 10 entries) (10 s)"]);
  expect(p.drawn).toEqual([]);
});

test("elsewhere: short work prints nothing", () => {
  const p = run(false);
  p.step(10);
  p.end();
  expect(p.said).toEqual([]);
});

test("percent says 100 only when the work is complete", () => {
  expect(percent(10, 10)).toBe("99%");
  expect(percent(10, 10, true)).toBe("100%");
  expect(percent(3, 0)).toBe("0%");
  expect(percent(50, 200)).toBe("25%");
});
