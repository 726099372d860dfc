// Our union filesystem (with and without casefold) against fuse-overlayfs, side by side on
// the same lower directory: cold stat/s, cold small files/s (open+read+close) and cold
// sequential read MB/s. Every measure gets a fresh mount (so the kernel's caches of the
// mount are cold) over a warm backing directory; the kinds run interleaved, so machine
// noise hits all alike. Prints a table with ratios to fuse-overlayfs (target ≥ 0.7).
//
//   node_modules/.bin/bun bench/unionfs.ts [--runs 5] [--files 5000]
import { closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
/** fim_supervise, whose janitor unmounts when a server ends. */
const JANITOR = join(import.meta.dir, "../toolset/out/x86_64/bin/fim_supervise");

const ROOT = join(import.meta.dir, "..");
const FUSE_OVERLAYFS = join(ROOT, "toolset/out/x86_64/bin/fuse-overlayfs");
const SERVER = join(ROOT, "test/fixtures/serve-unionfs.ts");
const { values } = parseArgs({ options: { runs: { type: "string", default: "5" }, files: { type: "string", default: "5000" } } });
const RUNS = Number(values.runs);
const FILES = Number(values.files);
const BIG_MB = 200;

const data = join(ROOT, ".cache/bench/unionfs-data");
const lower = join(data, `lower-${FILES}`);
if (!existsSync(join(lower, "big.bin"))) {
  console.error(`bench: writing ${FILES} small files and a ${BIG_MB} MB file to ${lower}`);
  rmSync(lower, { recursive: true, force: true });
  const chunk = Buffer.alloc(4096, 7);
  for (let i = 0; i < FILES; i++) {
    const dir = join(lower, `d${i % 50}`);
    if (i < 50) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `File${i}.txt`), chunk);
  }
  writeFileSync(join(lower, "big.bin"), Buffer.alloc(BIG_MB << 20, 1));
}
const smallFiles = readdirSync(lower)
  .filter((name) => name.startsWith("d"))
  .flatMap((dir) => readdirSync(join(lower, dir)).map((name) => `${dir}/${name}`));
// Warm the backing page cache once: every kind then reads from memory below FUSE.
for (const path of smallFiles) lstatSync(join(lower, path));
readAll(join(lower, "big.bin"));

interface Mount {
  path: string;
  unmount(): Promise<void>;
}
type Kind = (work: string) => Promise<Mount>;

async function ours(work: string, casefold: boolean): Promise<Mount> {
  const [mnt, upper, scratch] = ["mnt", "upper", "work"].map((name) => join(work, name)) as [string, string, string];
  for (const dir of [mnt, upper, scratch]) mkdirSync(dir);
  const request = { mountpoint: mnt, upper, lowers: [lower], work: scratch, casefold, mount: "fusermount", janitor: JANITOR, ttl: casefold ? 1 : 10 };
  const server = Bun.spawn([process.execPath, SERVER, JSON.stringify(request)], { stdout: "pipe", stderr: "inherit" });
  const reader = server.stdout.getReader();
  const line = new TextDecoder().decode((await reader.read()).value);
  if (line !== "ready\n") throw new Error("our union filesystem did not start");
  return {
    path: mnt,
    async unmount() {
      Bun.spawnSync(["fusermount3", "-u", mnt]);
      await server.exited;
    },
  };
}

async function fuseOverlayfs(work: string): Promise<Mount> {
  const [mnt, upper, scratch] = ["mnt", "upper", "work"].map((name) => join(work, name)) as [string, string, string];
  for (const dir of [mnt, upper, scratch]) mkdirSync(dir);
  const result = Bun.spawnSync([FUSE_OVERLAYFS, "-o", `lowerdir=${lower},upperdir=${upper},workdir=${scratch}`, mnt], { stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`fuse-overlayfs: ${result.stderr.toString()}`);
  return {
    path: mnt,
    async unmount() {
      Bun.spawnSync(["fusermount3", "-u", mnt]);
    },
  };
}

async function direct(): Promise<Mount> {
  return { path: lower, unmount: async () => {} };
}

const kinds: Record<string, Kind> = {
  "fuse-overlayfs": fuseOverlayfs,
  "ours (union)": (work) => ours(work, false),
  "ours (union+casefold)": (work) => ours(work, true),
  "no FUSE (backing dir)": direct,
};

function readAll(path: string): number {
  const buffer = Buffer.allocUnsafe(1 << 20);
  const fd = openSync(path, "r");
  let total = 0;
  for (let n; (n = readSync(fd, buffer, 0, buffer.length, null)) > 0; ) total += n;
  closeSync(fd);
  return total;
}

const measures: Record<string, { unit: string; run(root: string): number }> = {
  "stat/s": {
    unit: "stat/s",
    run(root) {
      const started = performance.now();
      for (const path of smallFiles) lstatSync(join(root, path));
      return smallFiles.length / ((performance.now() - started) / 1000);
    },
  },
  "small files/s": {
    unit: "files/s",
    run(root) {
      const buffer = Buffer.allocUnsafe(8192);
      const started = performance.now();
      for (const path of smallFiles) {
        const fd = openSync(join(root, path), "r");
        readSync(fd, buffer, 0, buffer.length, 0);
        closeSync(fd);
      }
      return smallFiles.length / ((performance.now() - started) / 1000);
    },
  },
  "sequential MB/s": {
    unit: "MB/s",
    run(root) {
      const started = performance.now();
      const bytes = readAll(join(root, "big.bin"));
      return bytes / 1e6 / ((performance.now() - started) / 1000);
    },
  },
};

const results: Record<string, Record<string, number[]>> = {};
for (let run = 0; run < RUNS; run++) {
  for (const [measure, { run: measureRun }] of Object.entries(measures)) {
    // Each run starts with another kind, so no kind always goes first.
    const entries = Object.entries(kinds);
    for (const [kind, mount] of [...entries.slice(run % entries.length), ...entries.slice(0, run % entries.length)]) {
      const work = mkdtempSync(join(tmpdir(), "fim-bench-unionfs-"));
      const mounted = await mount(work);
      try {
        ((results[kind] ??= {})[measure] ??= []).push(measureRun(mounted.path));
      } finally {
        await mounted.unmount();
        rmSync(work, { recursive: true, force: true });
      }
    }
  }
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const names = Object.keys(measures);
console.log(`\n${FILES} files of 4 KiB in 50 directories, a ${BIG_MB} MB file; medians of ${RUNS} fresh mounts each; ratio = ours / fuse-overlayfs\n`);
console.log(`| filesystem | ${names.join(" | ")} |`);
console.log(`|---|${names.map(() => "---").join("|")}|`);
for (const kind of Object.keys(kinds)) {
  const cells = names.map((measure) => {
    const value = median(results[kind]![measure]!);
    const base = median(results["fuse-overlayfs"]![measure]!);
    return kind === "fuse-overlayfs" || kind.startsWith("no FUSE") ? `${Math.round(value)}` : `${Math.round(value)} (${(value / base).toFixed(2)}×)`;
  });
  console.log(`| ${kind} | ${cells.join(" | ")} |`);
}
