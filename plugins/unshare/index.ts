// fim-unshare (reference §4.13): namespaces to unshare, stored as a u16 bit-field.
import { parseFlagSet, readFlags, type FlagSet } from "../../core/flagset.ts";
import { SANDBOX_STAGE, type SandboxOp } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { SLOTS } from "../../core/reserved.ts";

/** In bit order (bit 0 = user). */
export const UNSHARE_OPTIONS = ["user", "ipc", "pid", "net", "uts", "cgroup"] as const;
export type UnshareOption = (typeof UNSHARE_OPTIONS)[number];

const UNSHARE: FlagSet = {
  command: "fim-unshare",
  names: UNSHARE_OPTIONS,
  slot: SLOTS.unshare,
  wording: {
    missingOp: "Missing op for fim-unshare (add,clear,del,list,set)",
    invalidOp: "Invalid unshare operation",
    noneOp: "Invalid operation for unshare",
    invalidName: "Invalid unshare option",
    processFailed: "Failed to process unshare options",
    noneName: "Invalid unshare option 'NONE'",
    allWithOthers: "Unshare option 'all' should not be used with others",
    damaged: "The unshare options in the reserved space are damaged",
    ignored: "none is applied",
    failed: {
      add: "Failed to add unshare options",
      del: "Failed to delete unshare options",
      set: "Failed to set unshare options",
      clear: "Failed to clear unshare options",
      list: "Failed to list unshare options",
    },
  },
};

export function unshareOptions(runtime: Runtime): Set<UnshareOption> {
  return readFlags(runtime, UNSHARE) as Set<UnshareOption>;
}

/**
 * bwrap options per stored option (reference §9.4). The guest always gets its own user
 * namespace (identity mapping) and a pid namespace of its own, so `user` and `pid` add
 * nothing (they stay valid words: upstream's images store them).
 */
const UNSHARE_OPS: Record<UnshareOption, SandboxOp[]> = {
  user: [],
  ipc: [{ op: "unshare", namespace: "ipc" }],
  pid: [{ op: "unshare", namespace: "pid" }],
  net: [{ op: "unshare", namespace: "net" }],
  uts: [{ op: "unshare", namespace: "uts" }],
  cgroup: [{ op: "unshare", namespace: "cgroup", optional: true }],
};

export const unsharePlugin: Plugin = {
  name: "unshare",
  apply(runtime) {
    runtime.hooks.sandbox.tapPromise({ name: "unshare", stage: SANDBOX_STAGE.namespaces }, async (operations) => {
      const log = runtime.logger("unshare");
      const chosen = unshareOptions(runtime);
      const added = UNSHARE_OPTIONS.filter((option) => chosen.has(option)).map((option) => {
        log.debug(`UNSHARE(${option.toUpperCase()})`);
        return UNSHARE_OPS[option];
      });
      return [...operations, ...added.flat()];
    });

    runtime.hooks.commands.tap("unshare", (commands) =>
      commands.set("fim-unshare", {
        name: "fim-unshare",
        brief: true,
        summary: "Edit the namespaces the sandbox unshares from the host",
        help: [
          {
            usage: "fim-unshare <add|del|set> <options...>",
            args: [
              ["add", "Unshare one or more namespaces"],
              ["del", "Share one or more namespaces again"],
              ["set", "Replace all unshare options with the given set"],
              ["options", "One or more options, comma-separated"],
            ],
            notes: [
              `Unshare options: all,${UNSHARE_OPTIONS.join(",")}`,
              "The 'all' option cannot be combined with other options",
              "USER adds nothing: every guest has a user namespace of its own",
              "CGROUP is skipped where the kernel refuses it",
            ],
            examples: ["fim-unshare add ipc,pid", "fim-unshare set user,ipc,net"],
          },
          {
            usage: "fim-unshare <list|clear>",
            args: [
              ["list", "List the current unshare options"],
              ["clear", "Remove all unshare options"],
            ],
          },
        ],
        parse: (args) => parseFlagSet(UNSHARE, args, runtime),
      }),
    );
  },
};
