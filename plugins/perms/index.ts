// fim-perms (reference §4.3): the 15 permissions, stored as a u64 bit-field.
import { parseFlagSet, readFlags, type FlagSet } from "../../core/flagset.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { SLOTS } from "../../core/reserved.ts";

export { permissionMapper, type MapperContext } from "./mapper.ts";

/** In bit order (bit 0 = home). */
export const PERMISSIONS = [
  "home", "media", "audio", "wayland", "xorg", "dbus_user", "dbus_system", "udev",
  "usb", "input", "gpu", "network", "dev", "shm", "optical",
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const PERMS: FlagSet = {
  command: "fim-perms",
  names: PERMISSIONS,
  slot: SLOTS.permissions,
  wording: {
    missingOp: "Missing op for fim-perms (add,del,list,set,clear)",
    invalidOp: "Invalid perms operation",
    noneOp: "Invalid operation for permissions",
    invalidName: "Invalid permission",
    processFailed: "Failed to process permissions",
    noneName: "Invalid permission 'NONE'",
    allWithOthers: "Permission 'all' should not be used with others",
    failed: {
      add: "Failed to add permissions",
      del: "Failed to delete permissions",
      set: "Failed to set permissions",
      clear: "Failed to clear permissions",
      list: "Failed to stringfy permissions",
    },
  },
};

/** The permissions granted to the image, for the sandbox's permission mappers. */
export function grantedPermissions(runtime: Runtime): Set<Permission> {
  return readFlags(runtime, PERMS) as Set<Permission>;
}

export const permsPlugin: Plugin = {
  name: "perms",
  apply(runtime) {
    runtime.hooks.commands.tap("perms", (commands) =>
      commands.set("fim-perms", {
        name: "fim-perms",
        summary: "Edit current permissions for the flatimage",
        help: [
          {
            usage: "fim-perms <add|del|set> <perms...>",
            args: [
              ["add", "Allow one or more permissions"],
              ["del", "Delete one or more permissions"],
              ["set", "Replace all permissions with the given set"],
              ["perms", "One or more permissions, comma-separated"],
            ],
            notes: [
              `Permissions: all,${[...PERMISSIONS].sort().join(",")}`,
              "The 'all' permission sets all available permissions and cannot be combined with other permissions",
            ],
            examples: ["fim-perms add home,network,gpu", "fim-perms set wayland,audio,network"],
          },
          {
            usage: "fim-perms <list|clear>",
            args: [
              ["list", "List the current permissions"],
              ["clear", "Remove all permissions"],
            ],
          },
        ],
        parse: (args) => parseFlagSet(PERMS, args, runtime),
      }),
    );
  },
};
