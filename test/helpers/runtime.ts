// A Runtime in memory over a synthetic image: the lifecycle's hooks run without bwrap or
// FUSE, so a plugin's contribution to a run is tested in milliseconds.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import commonBundle from "../../bundles/blueprint/index.ts";
import { Image } from "../../core/image.ts";
import { Launch, isComplete, missingFacts, type LaunchRequest, type SandboxOp } from "../../core/launch.ts";
import { computePaths } from "../../core/paths.ts";
import type { Bundle, Plugin } from "../../core/plugin.ts";
import { Runtime } from "../../core/runtime.ts";
import { syntheticImage } from "./synthetic.ts";

export interface MemoryRuntime {
  runtime: Runtime;
  image: Image;
  /** Runs a fim-* command's action (as the CLI would, without a process). */
  command(...argv: string[]): Promise<number | void>;
  /** The facts and the ordered sandbox operations of a run, without preparing, mounting or executing it. */
  plan(request?: Partial<LaunchRequest>): Promise<{ launch: Launch; operations: SandboxOp[] }>;
}

export async function memoryRuntime(options: { plugins?: Plugin[]; env?: Record<string, string> } = {}): Promise<MemoryRuntime> {
  const bundle: Bundle = { ...commonBundle, plugins: options.plugins ?? commonBundle.plugins };
  const runtime = new Runtime(bundle);
  const image = Image.open(await syntheticImage());
  const data = mkdtempSync(join(tmpdir(), "fim-memory-data-"));
  runtime.attach(image, computePaths(image, { ...process.env, FIM_DIR_DATA: data, ...options.env }));
  return {
    runtime,
    image,
    async command(name, ...args) {
      const command = runtime.commands.get(name);
      if (!command) throw new Error(`no command ${name}`);
      return command.parse(args, runtime)();
    },
    async plan(request = {}) {
      const full: LaunchRequest = { program: "true", args: [], root: false, ...request };
      const facts = await runtime.hooks.facts.promise({}, full);
      if (!isComplete(facts)) throw new Error(`missing facts: ${missingFacts(facts).join(", ")}`);
      const launch = new Launch(full, facts);
      launch.root = { kind: "directory", path: runtime.paths.upper };
      const operations = await runtime.hooks.sandbox.promise([], launch);
      return { launch, operations };
    },
  };
}
