// Our union filesystem (a FUSE server in TypeScript, lib/fuse): the UNIONFS overlay type,
// and the casefold view (reference §8.3–§8.4). With UNIONFS, one process does both (one
// FUSE hop); over the OVERLAYFS type it serves the case-insensitive view alone. It runs from
// the launcher copy inside the run's namespace, mounted with mount(2): it needs no
// fusermount3, and a killed server leaves no mount behind (the namespace takes it along).
import { mkdirSync } from "../../lib/fs.ts";
import * as v from "valibot";
import { FimError } from "../../core/errors.ts";
import type { PrepareStep } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { workDirectory } from "../../core/run-services.ts";
import { registerOverlayType } from "../overlay/index.ts";
import { selfCommand } from "../relocate/index.ts";
import { ServeRequestSchema, type ServeRequest } from "./schema.ts";

const NAME = "unionfs";
const SERVE_COMMAND = "fim-unionfs-serve";
/** Seconds the kernel caches names and attributes; casefold aliases may be stale that long. */
const TTL = { union: 10, casefold: 1 };
async function serverStep(runtime: Runtime, request: ServeRequest): Promise<PrepareStep> {
  // The server prints "ready" once mounted (its stderr goes to the run's log).
  return { kind: "ready", argv: [...selfCommand(runtime), SERVE_COMMAND, JSON.stringify(request)] };
}

export const unionfsPlugin: Plugin = {
  name: NAME,
  requires: ["overlay"],
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
          const parsed = v.safeParse(ServeRequestSchema(), args.length === 1 ? JSON.parse(args[0]!) : undefined);
          if (!parsed.success) throw new FimError(`${SERVE_COMMAND} takes one JSON request: ${parsed.issues[0].message}`, { level: "C" });
          // The server is loaded only in its own process, not by every command.
          return async () => (await import("./serve.ts")).serve(parsed.output);
        },
      }),
    );

    registerOverlayType(runtime, NAME, { type: "UNIONFS", byte: 0x08, summary: "Uses the union filesystem" }, async (launch) => {
      log.debug("Overlay type: UNIONFS_FUSE");
      // One server per upper directory (the runs of a data directory share it): it keeps
      // what it learns about the directory.
      const { mounts, upper } = runtime.paths;
      const work = workDirectory(runtime);
      const mountpoint = `${mounts}/root`;
      mkdirSync(mountpoint, { recursive: true });
      mkdirSync(upper, { recursive: true });
      const { casefold } = launch.facts;
      const lowers = [...launch.lowerDirs].reverse();
      launch.steps.push(await serverStep(runtime, { mountpoint, upper, lowers, work, casefold, mount: "namespace", ttl: casefold ? TTL.casefold : TTL.union }));
      return { kind: "directory", path: mountpoint, caseInsensitive: casefold };
    });

    runtime.hooks.casefold.tapPromise(NAME, async (root, launch) => {
      if (!launch.facts.casefold) {
        log.debug("casefold is disabled");
        return root;
      }
      log.debug("casefold is enabled");
      if (root.kind === "directory" && root.caseInsensitive) return root;
      // Another overlay type made the root: serve a case-insensitive view of it.
      if (root.kind !== "directory") {
        log.warn("casefold cannot be used with bwrap overlays");
        return root;
      }
      const mountpoint = `${runtime.paths.mounts}/casefold`;
      mkdirSync(mountpoint, { recursive: true });
      launch.steps.push(await serverStep(runtime, { mountpoint, upper: root.path, lowers: [], casefold: true, mount: "namespace", ttl: TTL.casefold }));
      return { kind: "directory", path: mountpoint, caseInsensitive: true };
    });
  },
};
