// Builds dist/<bundle>.flatimage: compiles the launcher for a bundle, then puts the boot stub
// at its head and appends the image header, the compressed launcher with the glibc loader
// and libraries it needs, the compressed helper tools, the reserved space and the layers
// (core/image.ts).
//   bun scripts/build.ts <bundle> [--plugin file.ts]... [--out path] [--tools dir] [--layer file]... [--remote url] [--level N]
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { dumpJson } from "../core/json.ts";
import type { Bundle, Plugin } from "../core/plugin.ts";
import { Runtime } from "../core/runtime.ts";
import { SLOTS, textBytes } from "../core/reserved.ts";
import { assembleImage, type Provenance, type ToolInput } from "./assemble.ts";
import { compileLauncher } from "./compile.ts";
import { rootfsLayer } from "./rootfs.ts";
import { runtimeLibraries } from "./runtime.ts";

const root = resolve(import.meta.dir, "..");

function usage(message?: string): never {
  if (message) console.error(`build: ${message}`);
  console.error("usage: npm run build -- <bundle> [--plugin file.ts]... [--out path] [--tools dir] [--layer file]... [--remote url] [--level N]");
  console.error("  --remote url: the recipe remote the image starts with (default: the bundle's; '' for none)");
  console.error("  --level N: zstd level of the launcher and tools (1..19, default 19; results are cached)");
  const bundles = readdirSync(`${root}/bundles`, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
  console.error(`bundles: ${bundles.join(", ")}`);
  process.exit(2);
}

const { values, positionals } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    plugin: { type: "string", multiple: true, default: [] },
    out: { type: "string" },
    tools: { type: "string" },
    layer: { type: "string", multiple: true, default: [] },
    remote: { type: "string" },
    level: { type: "string", default: "19" },
    help: { type: "boolean", short: "h" },
  },
  allowPositionals: true,
  strict: true,
});
if (values.help) usage();
const [bundleName, ...extra] = positionals;
if (!bundleName || extra.length > 0) usage(bundleName ? `unexpected arguments: ${extra.join(" ")}` : "missing bundle name");
if (!/^[a-z0-9-]+$/.test(bundleName) || !existsSync(`${root}/bundles/${bundleName}/index.ts`)) usage(`unknown bundle '${bundleName}'`);

const plugins = values.plugin.map((file) => {
  const path = resolve(file);
  if (!existsSync(path)) usage(`plugin file '${file}' does not exist`);
  return path;
});
for (const layer of values.layer) if (!existsSync(layer)) usage(`layer file '${layer}' does not exist`);
if (values.remote && !/^https?:\/\/./i.test(values.remote)) usage(`--remote '${values.remote}' is not an http:// or https:// URL`);
const level = Number(values.level);
if (!Number.isInteger(level) || level < 1 || level > 19) usage(`invalid --level '${values.level}' (1..19)`);

const output = resolve(values.out ?? `${root}/dist/${bundleName}.flatimage`);
const work = mkdtempSync(join(tmpdir(), `fim-build-${bundleName}-`));
process.on("exit", () => rmSync(work, { recursive: true, force: true }));
mkdirSync(dirname(output), { recursive: true });

function step(text: string) {
  console.error(`build: ${text}`);
}

// The entry imports the bundle and any extra (third-party) plugins by absolute path.
const entry = `${work}/entry.ts`;
await Bun.write(
  entry,
  [
    `import { main } from ${JSON.stringify(`${root}/core/main.ts`)};`,
    `import bundle from ${JSON.stringify(`${root}/bundles/${bundleName}/index.ts`)};`,
    ...plugins.map((path, i) => `import extra${i} from ${JSON.stringify(path)};`),
    ...plugins.map((_, i) => `bundle.plugins.push(extra${i});`),
    "void main(bundle);",
    "",
  ].join("\n"),
);

step(`compiling the launcher for '${bundleName}'${plugins.length ? ` with ${plugins.length} extra plugin(s)` : ""}`);
const launcher = `${work}/launcher`;
const compiled = await compileLauncher(entry, launcher);
if (!compiled.success) {
  for (const message of compiled.logs) console.error(message);
  step("compiling the launcher failed");
  process.exit(1);
}

// Only a complete tool set is used: toolset/build.sh writes its manifest last. Its fim_stub
// is the image's head; every other tool is embedded.
const toolsDir = values.tools ?? `${root}/toolset/out/x86_64`;
const manifestPath = `${toolsDir}/manifest.json`;
if (!existsSync(manifestPath)) usage(`no complete tool set at ${toolsDir}: build it first (toolset/build.sh)`);
const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as Record<string, Partial<ToolInput>>;
const provenance = (meta: Partial<ToolInput> | undefined): Provenance => ({ version: meta?.version ?? "", source: meta?.source ?? "", licenses: meta?.licenses ?? [] });
const STUB = "fim_stub";
if (!manifest[STUB] || !existsSync(`${toolsDir}/bin/${STUB}`)) usage(`the tool set at ${toolsDir} has no boot stub (${STUB}): rebuild it (toolset/build.sh)`);
const tools: ToolInput[] = [];
for (const [name, meta] of Object.entries(manifest).sort(([a], [b]) => (a < b ? -1 : 1))) {
  if (name === STUB) continue;
  const path = `${toolsDir}/bin/${name}`;
  if (!existsSync(path)) usage(`tool '${name}' of ${manifestPath} is missing: rebuild the tool set (toolset/build.sh)`);
  tools.push({ name, path, ...provenance(meta) });
}
step(`embedding ${tools.length} tools from ${toolsDir}`);

// The launcher and the glibc it runs on, from this (the build) host.
let runtime: ReturnType<typeof runtimeLibraries>;
try {
  runtime = runtimeLibraries(launcher, work);
} catch (error) {
  step(`finding the launcher's libraries failed: ${(error as Error).message}`);
  process.exit(1);
}
const launcherPart = {
  path: "bin/fim_boot",
  file: launcher,
  mode: 0o755,
  provenance: {
    version: Bun.version,
    source: `this project's launcher compiled with Bun ${Bun.version} (npm package bun)`,
    licenses: [{ type: "MIT (Bun; its JavaScriptCore is LGPL-2.0-or-later)", url: "https://bun.sh/docs/project/licensing" }],
  },
};
step(`bundling the launcher's loader and ${runtime.libraries.length - 1} libraries from this host`);

const pkg = JSON.parse(readFileSync(`${root}/package.json`, "utf8")) as { version: string };
const git = Bun.spawnSync(["git", "rev-parse", "--short=7", "HEAD"], { cwd: root, stdout: "pipe", stderr: "ignore" });
const commit = git.exitCode === 0 ? git.stdout.toString().trim() : "0000000";
const timestamp = new Date().toISOString().replace(/[-:T]/g, "").slice(0, 14);
const bundleModule = (await import(`${root}/bundles/${bundleName}/index.ts`)) as { default: Bundle };
// The commands that declare themselves brief, as the launcher has them (the boot stub reads the list).
let briefCommands: string[];
try {
  const extras = await Promise.all(plugins.map(async (path) => ((await import(path)) as { default: Plugin }).default));
  const commands = new Runtime({ ...bundleModule.default, plugins: [...bundleModule.default.plugins, ...extras] }).commands;
  briefCommands = [...commands.values()].filter((command) => command.brief).map((command) => command.name);
} catch (error) {
  step(`applying the plugins of '${bundleName}' failed: ${(error as Error).message}`);
  process.exit(1);
}
// The recipe remote a fresh image shows (upstream's release images have theirs preset).
const remote = values.remote ?? bundleModule.default.remote ?? "";
if (remote) step(`recipe remote: ${remote}`);

// The bundle's root filesystem becomes layer 0 (cached by the bootstrap script's content).
const layers: string[] = [];
const rootfsScript = `${root}/bundles/${bundleName}/rootfs.ts`;
if (existsSync(rootfsScript)) {
  try {
    layers.push(await rootfsLayer(bundleName, rootfsScript, toolsDir, work, step));
  } catch (error) {
    step(`building the root filesystem of '${bundleName}' failed: ${(error as Error).message}`);
    process.exit(1);
  }
}
layers.push(...values.layer.map((layer) => resolve(layer)));

const size = await assembleImage({
  stub: `${toolsDir}/bin/${STUB}`,
  stubProvenance: provenance(manifest[STUB]),
  boot: [launcherPart, ...runtime.libraries],
  loader: runtime.loader,
  launcher: launcherPart.path,
  library: "lib",
  // Bun's x64 build needs x86-64-v2 (POPCNT, SSE4.2…; AVX2 only where it checks for it).
  cpuLevel: 2,
  level,
  output,
  tools,
  layers,
  briefCommands,
  metadata: { version: `v${pkg.version}`, commit, timestamp, distribution: bundleModule.default.distribution },
  reserved: remote ? [{ offset: SLOTS.remote.offset, data: textBytes(dumpJson({ url: remote }), SLOTS.remote) }] : [],
  progress: step,
});
step(`wrote ${output} (${(size / 1024 / 1024).toFixed(1)} MiB)`);
console.log(output);
