// dbus_user: the session bus socket named by $DBUS_SESSION_BUS_ADDRESS. An abstract socket
// (`unix:abstract=…`) is reachable only through the host's network namespace (`network`).
import type { SandboxOp } from "../../core/launch.ts";
import { permissionMapper } from "../perms/index.ts";

export const dbusUserPermission = permissionMapper({ name: "dbus_user", bit: 5, order: 6 }, ({ log }) => {
  const address = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (!address) {
    log.error("DBUS_SESSION_BUS_ADDRESS is undefined");
    return [];
  }
  const path = /(?:^|[:,;])path=([^,;]+)/.exec(address)?.[1];
  const operations: SandboxOp[] = [{ op: "setenv", name: "DBUS_SESSION_BUS_ADDRESS", value: address }];
  if (path) operations.push({ op: "bind", mode: "rw", source: path, dest: path, optional: true });
  return operations;
});
