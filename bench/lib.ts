import { copyFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

// Side-by-side timing: the commands run interleaved, so machine noise hits both alike.
export interface Timing {
  name: string;
  median: number;
  p10: number;
  p90: number;
  /** Each run's time, in the order of the rounds (round i of every command ran back to back). */
  samples: number[];
  /**
   * Each run's CPU time (user and system, ms) of the process and the descendants it waited
   * for: time stolen by other guests of a virtual machine is not in it, so it is steadier
   * than the time on a noisy machine (and it counts work done in parallel twice).
   */
  cpu: number[];
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/** `prepare[name]`, when given, runs (untimed) before each run of that command. */
export function compare(commands: Record<string, string[]>, runs = 50, warmup = 5, prepare: Record<string, () => void> = {}, env?: Record<string, string>): Timing[] {
  const names = Object.keys(commands);
  const samples: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  const cpu: Record<string, number[]> = Object.fromEntries(names.map((name) => [name, []]));
  for (let i = 0; i < warmup + runs; i++) {
    for (const name of names) {
      prepare[name]?.();
      const started = performance.now();
      const result = Bun.spawnSync(commands[name]!, { stdout: "ignore", stderr: "pipe", ...(env ? { env } : {}) });
      const elapsed = performance.now() - started;
      if (result.exitCode !== 0) throw new Error(`${name} failed: ${result.stderr.toString()}`);
      if (i >= warmup) {
        samples[name]!.push(elapsed);
        const { user, system } = result.resourceUsage.cpuTime;
        cpu[name]!.push(Number(user + system) / 1000);
      }
    }
  }
  return names.map((name) => {
    const sorted = [...samples[name]!].sort((a, b) => a - b);
    return { name, median: quantile(sorted, 0.5), p10: quantile(sorted, 0.1), p90: quantile(sorted, 0.9), samples: samples[name]!, cpu: cpu[name]! };
  });
}

/**
 * The median of the round-by-round ratios: steadier than the ratio of the medians on a noisy
 * machine, where a slow stretch hits both commands of a round but not the same rounds of each.
 */
export function pairedRatio(timing: Timing, base: Timing, of: "samples" | "cpu" = "samples"): number {
  return quantile(timing[of].map((sample, round) => sample / base[of][round]!).sort((a, b) => a - b), 0.5);
}

const median = (values: number[]) => quantile([...values].sort((a, b) => a - b), 0.5);

export function report(timings: Timing[], baseline: string): void {
  const base = timings.find((t) => t.name === baseline)!;
  for (const t of timings) {
    console.log(
      `${t.name.padEnd(28)} median ${t.median.toFixed(2)} ms  (p10 ${t.p10.toFixed(2)}, p90 ${t.p90.toFixed(2)})  ratio ${(t.median / base.median).toFixed(2)}x  paired ${pairedRatio(t, base).toFixed(2)}x` +
        `  |  cpu ${median(t.cpu).toFixed(2)} ms, paired ${pairedRatio(t, base, "cpu").toFixed(2)}x`,
    );
  }
}

/** A private copy of an image (default dist/blueprint.flatimage) and a runner that throws on failure. */
export function benchImage(prefix: string): { dir: string; image: string; run: (...args: string[]) => string } {
  const source = resolve(Bun.argv[2] ?? join(import.meta.dir, "../dist/blueprint.flatimage"));
  const dir = mkdtempSync(join(tmpdir(), `fim-bench-${prefix}-`));
  const image = join(dir, "app.flatimage");
  copyFileSync(source, image);
  const run = (...args: string[]) => {
    const result = Bun.spawnSync([image, ...args], { stdout: "pipe", stderr: "pipe" });
    if (result.exitCode !== 0) throw new Error(`${args.join(" ")}: ${result.stderr.toString()}`);
    return result.stdout.toString();
  };
  return { dir, image, run };
}
