// Start-up profile: FIM_PROFILE=1 prints, on stderr, how long each phase took and, below it,
// each plugin's apply and taps of the runtime's hooks (the slowest first), so that a slow
// start can be traced to the plugin that spends the time.
import { nodeFsLoaded, writeSync } from "../lib/fs.ts";

const enabled = process.env.FIM_PROFILE === "1";
const marks: [string, number][] = [];
const taps = new Map<string, number>();
const events: [string, number][] = [];

export function mark(phase: string): void {
  if (enabled) marks.push([phase, performance.now()]);
}

/** Something that happened beside the phases (a helper process started, became ready). */
export function event(what: string): void {
  if (enabled) events.push([what, performance.now()]);
}

interface Tap {
  name: string;
  type: "sync" | "async" | "promise";
  fn: Function; // tapable's own type
}
interface Interceptable {
  intercept(interceptor: { register?: (tap: Tap) => Tap }): void;
}

/** Times every tap of these hooks (only with FIM_PROFILE=1; a no-op otherwise). */
export function profileHooks(hooks: Record<string, Interceptable>): void {
  if (!enabled) return;
  for (const [hook, instance] of Object.entries(hooks)) {
    instance.intercept({
      register(tap) {
        if (tap.type === "async") return tap; // callback taps: none in the runtime's hooks
        const key = `${hook}/${tap.name}`;
        const add = (started: number) => taps.set(key, (taps.get(key) ?? 0) + performance.now() - started);
        const fn = tap.fn as (...args: unknown[]) => unknown;
        const timed = (...args: unknown[]) => {
          const started = performance.now();
          const result = fn(...args);
          if (result instanceof Promise) return result.finally(() => add(started));
          add(started);
          return result;
        };
        return { ...tap, fn: timed };
      },
    });
  }
}

/** Runs `work`, timed as `key` among the taps (only with FIM_PROFILE=1). */
export function timed<T>(key: string, work: () => T): T {
  if (!enabled) return work();
  const started = performance.now();
  try {
    return work();
  } finally {
    taps.set(key, (taps.get(key) ?? 0) + performance.now() - started);
  }
}

export function printProfile(): void {
  if (!enabled) return;
  let previous = 0;
  const lines = marks.map(([phase, at]) => {
    const line = `profile: ${phase.padEnd(10)} ${(at - previous).toFixed(2).padStart(7)} ms  (at ${at.toFixed(2)} ms)`;
    previous = at;
    return line;
  });
  for (const [what, at] of events) lines.push(`profile: ${what} at ${at.toFixed(2)} ms`);
  const fs = nodeFsLoaded();
  lines.push(fs ? `profile: node:fs loaded at ${fs.at.toFixed(2)} ms ${fs.by}`.trimEnd() : "profile: node:fs not loaded");
  const slowest = [...taps].sort((a, b) => b[1] - a[1]).filter(([, ms]) => ms >= 0.05);
  for (const [key, ms] of slowest) lines.push(`profile:   ${ms.toFixed(2).padStart(7)} ms  ${key}`);
  writeSync(2, `${lines.join("\n")}\n`); // not process.stderr: it costs ~10 ms to make
}
