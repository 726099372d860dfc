// A permission mapper: a plugin that adds the bwrap operations of one permission when the
// image grants it (reference §9.3). Each permission has its own plugin folder.
import { SANDBOX_STAGE, type Identity, type SandboxOp } from "../../core/launch.ts";
import type { Logger } from "../../core/log.ts";
import { runtimeDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { grantedPermissions, type Permission } from "./index.ts";

/** The reference's order; `dev` is last so that it supersedes the rest. */
const ORDER: Permission[] = ["gpu", "home", "media", "audio", "wayland", "xorg", "dbus_user", "dbus_system", "udev", "input", "usb", "network", "shm", "optical", "dev"];

export interface MapperContext {
  runtime: Runtime;
  log: Logger;
  identity: Identity;
  /** $XDG_RUNTIME_DIR or /run/user/<uid>. */
  xdg: string;
}

export function permissionMapper(permission: Permission, map: (context: MapperContext) => SandboxOp[]): Plugin {
  const name = `perm-${permission.replace("_", "-")}`;
  return {
    name,
    apply(runtime) {
      const log = runtime.logger(name);
      const stage = permission === "gpu" ? SANDBOX_STAGE.devices : SANDBOX_STAGE.permissions + ORDER.indexOf(permission);
      runtime.hooks.sandbox.tapPromise({ name, stage }, async (operations, launch) => {
        // Read once per run, not once per mapper.
        let granted = launch.state.get("perms") as Set<Permission> | undefined;
        if (!granted) launch.state.set("perms", (granted = grantedPermissions(runtime)));
        if (!granted.has(permission)) return operations;
        log.debug(`PERM(${permission.toUpperCase()})`);
        return [...operations, ...map({ runtime, log, identity: launch.identity!, xdg: runtimeDir() })];
      });
    },
  };
}
