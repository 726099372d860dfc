// The start of an image with the boot stub (this tree) against the earlier design (a ref's
// tree, by default where this branch left main, so both use the same tool set: the Bun
// executable as the image's head, copied uncompressed to
// /tmp/fim/app/<uid>/<build> by a second Bun start for writes and runs), side by side:
// the first start of a build (nothing extracted yet) and warm starts, of `fim-version
// short` and `fim-exec true`; then the images' sizes.
//   bun bench/boot.ts [--runs N] [--first-runs N] [--baseline REF]
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { compare, type Timing } from "./lib.ts";

const root = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  args: Bun.argv.slice(2),
  options: { runs: { type: "string", default: "30" }, "first-runs": { type: "string", default: "10" }, baseline: { type: "string" } },
});
const runs = Number(values.runs);
const firstRuns = Number(values["first-runs"]);
const work = join(root, ".cache/bench/boot");
mkdirSync(work, { recursive: true });
const bun = process.execPath;

function sh(argv: string[], cwd = root): string {
  const result = Bun.spawnSync(argv, { cwd, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`${argv.join(" ")}: ${result.stderr.toString()}`);
  return result.stdout.toString().trim();
}

// The baseline's tree, from git (no worktree is registered), with this checkout's modules and
// tool set (without the stub, which that layout does not know).
const baselineName = values.baseline ?? sh(["git", "merge-base", "HEAD", "main"]);
const ref = sh(["git", "rev-parse", "--short", baselineName]);
const baseTree = join(work, `baseline-${ref}`);
if (!existsSync(join(baseTree, "scripts/build.ts"))) {
  mkdirSync(baseTree, { recursive: true });
  sh(["sh", "-c", `git archive ${ref} | tar -x -C ${baseTree}`]);
  symlinkSync(join(root, "node_modules"), join(baseTree, "node_modules"));
}
const baseTools = join(work, "tools-baseline");
rmSync(baseTools, { recursive: true, force: true });
mkdirSync(baseTools, { recursive: true });
const manifest = JSON.parse(readFileSync(join(root, "toolset/out/x86_64/manifest.json"), "utf8")) as Record<string, unknown>;
delete manifest.fim_stub;
writeFileSync(join(baseTools, "manifest.json"), JSON.stringify(manifest));
symlinkSync(join(root, "toolset/out/x86_64/bin"), join(baseTools, "bin"));

const images = { stub: join(work, "stub/app.flatimage"), baseline: join(work, `baseline/app.flatimage`) };
console.log(`building the blueprint image of this tree and of ${baselineName} (${ref}) ...`);
mkdirSync(join(work, "stub"), { recursive: true });
mkdirSync(join(work, "baseline"), { recursive: true });
sh([bun, join(root, "scripts/build.ts"), "blueprint", "--out", images.stub]);
sh([bun, join(baseTree, "scripts/build.ts"), "blueprint", "--out", images.baseline, "--tools", baseTools], baseTree);

/** The build id in the image header (every layout keeps it at the end of the ELF part; format 3 puts a sha256 before the JSON). */
function buildId(path: string): string {
  const bytes = readFileSync(path);
  const end = Number(bytes.readBigUInt64LE(0x28)) + bytes.readUInt16LE(0x3a) * bytes.readUInt16LE(0x3c);
  const length = bytes.readUInt32LE(end + 8);
  const json = end + (bytes[end + 7]! >= 3 ? 44 : 12);
  return (JSON.parse(bytes.subarray(json, json + length).toString()) as { buildId: string }).buildId;
}
const uid = process.getuid!();
// The stub extracts into $XDG_RUNTIME_DIR/fim/app when it is set: a private one, emptied for first starts.
const xdg = join(work, "xdg");
mkdirSync(xdg, { recursive: true });
chmodSync(xdg, 0o700); // the stub uses it only if it is ours and 0700
const env = { ...process.env, XDG_RUNTIME_DIR: xdg } as Record<string, string>;
const forget = {
  stub: () => rmSync(join(xdg, "fim/app", buildId(images.stub)), { recursive: true, force: true }),
  baseline: () => rmSync(`/tmp/fim/app/${uid}/${buildId(images.baseline)}`, { recursive: true, force: true }),
};

const probe = Bun.spawnSync([images.stub, "fim-version", "short"], { env: { ...env, FIM_DEBUG: "1" }, stdout: "pipe" }).stdout.toString();
if (!probe.includes(`Runtime directory: '${xdg}/fim/app/`)) throw new Error(`the stub does not use ${xdg}:\n${probe}`);

const table: [string, Timing, Timing][] = [];
for (const args of [["fim-version", "short"], ["fim-exec", "true"]]) {
  const label = args.join(" ");
  const commands = { stub: [images.stub, ...args], baseline: [images.baseline, ...args] };
  const first = compare(commands, firstRuns, 1, forget, env);
  table.push([`${label}, first start of a build`, first[0]!, first[1]!]);
  const warm = compare(commands, runs, 3, {}, env);
  table.push([`${label}, warm`, warm[0]!, warm[1]!]);
}

const ms = (t: Timing) => `${t.median.toFixed(1)} ms (p10 ${t.p10.toFixed(1)}, p90 ${t.p90.toFixed(1)})`;
console.log(`\n| what | boot stub (this tree) | Bun head (${ref}) | ratio |`);
console.log("|---|---|---|---|");
for (const [label, stub, base] of table) console.log(`| ${label} | ${ms(stub)} | ${ms(base)} | **${(stub.median / base.median).toFixed(2)}×** |`);
const mib = (path: string) => (Bun.file(path).size / 1048576).toFixed(1);
console.log(`| blueprint image size | ${mib(images.stub)} MiB | ${mib(images.baseline)} MiB | **${(Bun.file(images.stub).size / Bun.file(images.baseline).size).toFixed(2)}×** |`);
forget.baseline();
