// The per-user runtime directories (chosen by the boot stub: $XDG_RUNTIME_DIR/fim/app,
// /tmp/fim/app/<uid> or ~/.cache/fim/app): the extracted launcher, glibc and tools of each
// build live there and run on the host, so a guest must never be able to change them. A
// guest has a private /tmp and $XDG_RUNTIME_DIR, but a granted $HOME or a user's bind may
// reach ~/.cache: wherever it could write to them, it sees them read-only. Old builds are
// swept after a new one is extracted (plugins/relocate); `fim-cache` lists and clears.
import { rejectTrailing, parseWord } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { SANDBOX_STAGE, type SandboxOp } from "../../core/launch.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { existsSync } from "../../lib/fs.ts";
import { join } from "../../lib/path.ts";
import { treeSize } from "../../core/tree.ts";
import { buildInUse, builds, removeBuild, runtimeRoots } from "./store.ts";

const NAME = "runtime-dir";
/** After every permission and bind (a bound $HOME must not make them writable again). */
const STAGE = SANDBOX_STAGE.namespaces - 5;
const BIND_OPS = new Set(["--bind", "--bind-try", "--dev-bind", "--dev-bind-try"]);

/** Other plugins' cached directories (e.g. extracted layers) listed and cleared with the builds. */
export interface CacheEntry {
  path: string;
  size(): number;
  used: number;
  /** Removes it unless it is in use; returns whether it did. */
  remove(): boolean;
  /** Whether a process uses it (a probe that takes no lock for long). */
  inUse(): boolean;
}

const extraEntries: ((runtime: Runtime) => CacheEntry[])[] = [];
const extraDirs: ((runtime: Runtime) => string[])[] = [];

/** Lets another plugin's cache be listed and cleared by fim-cache, and kept read-only for guests. */
export function registerCache(entries: (runtime: Runtime) => CacheEntry[], dirs: (runtime: Runtime) => string[]): void {
  extraEntries.push(entries);
  extraDirs.push(dirs);
}

const under = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith("/") ? dir : `${dir}/`);

/**
 * Read-only binds of the runtime directories (and other caches) that the guest could write
 * to: those below the host directory of a read-write or device bind made so far (a granted
 * $HOME, a user's bind), bound again read-only where the guest sees them. The sandbox binds
 * the current build's bin and sbin read-only itself.
 */
export function readOnlyBinds(dirs: string[], operations: SandboxOp[]): SandboxOp[] {
  const binds: SandboxOp[] = [];
  for (const op of operations) {
    if (op.op !== "bind" || op.mode === "ro") continue;
    for (const dir of dirs) {
      if (!under(dir, op.source) || !existsSync(dir)) continue;
      const dest = join(op.dest, dir.slice(op.source.length));
      if (!binds.some((bind) => bind.op === "bind" && bind.dest === dest)) binds.push({ op: "bind", mode: "ro", source: dir, dest });
    }
  }
  return binds;
}

function entries(runtime: Runtime): (CacheEntry & { current: boolean; state(): string })[] {
  const { app } = runtime.paths;
  const found = runtimeRoots(app).flatMap(builds).map((build) => ({
    path: build.path,
    used: build.used,
    current: build.path === app,
    size: () => treeSize(build.path),
    remove: () => removeBuild(build),
    inUse: () => build.path === app || buildInUse(build),
    state: () => (build.path === app ? "current" : !build.locked ? "earlier layout (removed a day after its last use)" : buildInUse(build) ? "in use" : "unused"),
  }));
  const others = extraEntries.flatMap((list) => list(runtime)).map((entry) => ({ ...entry, current: false, state: () => (entry.inUse() ? "in use" : "unused") }));
  return [...found, ...others];
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

export const runtimeDirPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: STAGE }, async (operations) => {
      const { app } = runtime.paths;
      return [...operations, ...readOnlyBinds([...runtimeRoots(app), ...extraDirs.flatMap((dirs) => dirs(runtime))], operations)];
    });

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-cache", {
        name: "fim-cache",
        summary: "List or clear what images extracted for this user (builds, extracted layers)",
        help: [
          { usage: "fim-cache <list>", args: [["list", "Lists each build and extracted layer with its size, whether it is in use, and when it was last used"]] },
          {
            usage: "fim-cache <clear>",
            args: [["clear", "Removes every build and extracted layer that no running image uses (this image's own build is kept)"]],
            notes: ["Images extract what they need again on their next start"],
          },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-cache' (<list|clear>)", { level: "C" });
          const op = parseWord(opWord, ["list", "clear"] as const, "Invalid cache operation");
          if (op === "NONE") throw new FimError("Invalid operation for fim-cache", { level: "C" });
          rejectTrailing("fim-cache", rest);
          if (op === "list") {
            return () => {
              const text = entries(runtime)
                .sort((a, b) => b.used - a.used)
                .map((entry) => `${entry.path}\t${mib(entry.size())}\t${new Date(entry.used).toISOString()}\t${entry.state()}\n`)
                .join("");
              write(1, text);
            };
          }
          return () => {
            let freed = 0;
            for (const entry of entries(runtime)) {
              if (entry.current) continue;
              const size = entry.size();
              if (entry.remove()) {
                freed += size;
                write(1, `removed ${entry.path} (${mib(size)})\n`);
              } else {
                write(1, `kept ${entry.path}: ${entry.state()}\n`);
              }
            }
            write(1, `freed ${mib(freed)}\n`);
          };
        },
      }),
    );
  },
};
