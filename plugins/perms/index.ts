// fim-perms (reference §4.3): the permissions, stored as a u64 bit-field. Which permissions
// exist is the registry's (registry.ts): every permission plugin registers itself.
import { parseFlagSet, readFlags, type FlagSet } from "../../core/flagset.ts";
import type { HelpUsage, Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { SLOTS } from "../../core/reserved.ts";
import { namesByBit, permissionHooks } from "./registry.ts";

export { permissionMapper, type MapperContext } from "./mapper.ts";
export { directoriesShown, permissionHooks, registerPermission, type PermissionSpec } from "./registry.ts";

const NAME = "perms";

function permsFlagSet(runtime: Runtime): FlagSet {
  return {
    command: "fim-perms",
    names: namesByBit(runtime),
    slot: SLOTS.permissions,
    wording: {
      missingOp: "Missing op for fim-perms (add,del,list,set,clear)",
      invalidOp: "Invalid perms operation",
      noneOp: "Invalid operation for permissions",
      invalidName: "Invalid permission",
      processFailed: "Failed to process permissions",
      noneName: "Invalid permission 'NONE'",
      allWithOthers: "Permission 'all' should not be used with others",
      damaged: "The permissions in the reserved space are damaged",
      ignored: "no permission is granted",
      failed: {
        add: "Failed to add permissions",
        del: "Failed to delete permissions",
        set: "Failed to set permissions",
        clear: "Failed to clear permissions",
        list: "Failed to stringfy permissions",
      },
    },
  };
}

/** The permissions granted to the image. */
export function grantedPermissions(runtime: Runtime): Set<string> {
  return readFlags(runtime, permsFlagSet(runtime));
}

export const permsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.facts.tapPromise(NAME, async (facts) => ({ ...facts, permissions: grantedPermissions(runtime) }));
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-perms", {
        name: "fim-perms",
        brief: true,
        summary: "Edit current permissions for the flatimage",
        get help(): HelpUsage[] {
          const names = [...permissionHooks(runtime).permissions.keys()].sort();
          return [
            {
              usage: "fim-perms <add|del|set> <perms...>",
              args: [
                ["add", "Allow one or more permissions"],
                ["del", "Delete one or more permissions"],
                ["set", "Replace all permissions with the given set"],
                ["perms", "One or more permissions, comma-separated"],
              ],
              notes: [`Permissions: all,${names.join(",")}`, "The 'all' permission sets all available permissions and cannot be combined with other permissions"],
              examples: ["fim-perms add home,network,gpu", "fim-perms set wayland,audio,network"],
            },
            {
              usage: "fim-perms <list|clear>",
              args: [
                ["list", "List the current permissions"],
                ["clear", "Remove all permissions"],
              ],
            },
          ];
        },
        parse: (args) => parseFlagSet(permsFlagSet(runtime), args, runtime),
      }),
    );
  },
};
