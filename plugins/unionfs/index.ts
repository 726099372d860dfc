// Our union filesystem (a FUSE server in TypeScript, lib/fuse): the UNIONFS overlay type,
// and the casefold view (reference §8.3–§8.4). With UNIONFS, one process does both (one
// FUSE hop); over the OVERLAYFS type it serves the case-insensitive view alone. It runs from
// the launcher copy inside the run's namespace, mounted with mount(2): it needs no
// fusermount3, and a killed server leaves no mount behind (the namespace takes it along).
import { mkdirSync } from "node:fs";
import * as v from "valibot";
import { FimError } from "../../core/errors.ts";
import type { Launch } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { casefoldEnabled } from "../casefold/index.ts";
import { effectiveOverlay, lockDataDirectory, workDirectory } from "../overlay/index.ts";
import { selfCommand } from "../relocate/index.ts";
import { ServeRequestSchema, type ServeRequest } from "./schema.ts";

const NAME = "unionfs";
const SERVE_COMMAND = "fim-unionfs-serve";
/** Seconds the kernel caches names and attributes; casefold aliases may be stale that long. */
const TTL = { union: 10, casefold: 1 };
// The server says "ready" once mounted; an early end (no "ready") fails the step, and its
// stderr is in the step's log. Terminal signals are for the guest, not for the filesystem.
const START_AND_WAIT = 'trap "" INT QUIT; read -r line < <(exec "$@"); [ "$line" = ready ]';

async function serverStep(runtime: Runtime, request: ServeRequest): Promise<string[]> {
  return [await runtime.tool("bash"), "-c", START_AND_WAIT, "--", ...selfCommand(runtime), SERVE_COMMAND, JSON.stringify(request)];
}

export const unionfsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set(SERVE_COMMAND, {
        name: SERVE_COMMAND,
        hidden: true,
        summary: "Serves the union filesystem (started by runs)",
        consoleLevel: "C",
        help: [{ usage: `${SERVE_COMMAND} <json>` }],
        parse(args) {
          const parsed = v.safeParse(ServeRequestSchema, args.length === 1 ? JSON.parse(args[0]!) : undefined);
          if (!parsed.success) throw new FimError(`${SERVE_COMMAND} takes one JSON request: ${parsed.issues[0].message}`, { level: "C" });
          // The server is loaded only in its own process, not by every command.
          return async () => (await import("./serve.ts")).serve(parsed.output);
        },
      }),
    );

    runtime.hooks.overlay.tapPromise(NAME, async (launch: Launch) => {
      if (effectiveOverlay(runtime) !== "UNIONFS") return undefined;
      log.debug("Overlay type: UNIONFS_FUSE");
      // One writer per upper directory: the server keeps what it learns about it.
      await lockDataDirectory(runtime, launch);
      const { instance, upper } = runtime.paths;
      const work = await workDirectory(runtime, launch);
      const mountpoint = `${instance}/mount`;
      mkdirSync(mountpoint, { recursive: true });
      mkdirSync(upper, { recursive: true });
      const casefold = casefoldEnabled(runtime);
      const lowers = [...launch.lowerDirs].reverse();
      launch.steps.push(await serverStep(runtime, { mountpoint, upper, lowers, work, casefold, mount: "namespace", ttl: casefold ? TTL.casefold : TTL.union }));
      launch.rootOps = [["--bind", mountpoint, "/"]];
      launch.state.set(NAME, { casefold });
      return true;
    });

    runtime.hooks.casefold.tapPromise(NAME, async (launch: Launch) => {
      if (!casefoldEnabled(runtime)) return log.debug("casefold is disabled");
      log.debug("casefold is enabled");
      if ((launch.state.get(NAME) as { casefold: boolean } | undefined)?.casefold) return;
      // Another overlay type made the root: serve a case-insensitive view of it.
      const [root] = launch.rootOps;
      if (!root || root[0] !== "--bind" || root[2] !== "/") {
        return log.warn("casefold cannot be used with bwrap overlays");
      }
      const mountpoint = `${runtime.paths.instance}/casefold`;
      mkdirSync(mountpoint, { recursive: true });
      launch.steps.push(await serverStep(runtime, { mountpoint, upper: root[1]!, lowers: [], casefold: true, mount: "namespace", ttl: TTL.casefold }));
      launch.rootOps = [["--bind", mountpoint, "/"]];
    });
  },
};
