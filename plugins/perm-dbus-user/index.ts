// dbus_user: the session bus socket named by $DBUS_SESSION_BUS_ADDRESS.
import { permissionMapper } from "../perms/index.ts";

export const dbusUserPermission = permissionMapper("dbus_user", ({ log }) => {
  const address = process.env.DBUS_SESSION_BUS_ADDRESS;
  if (!address) {
    log.error("DBUS_SESSION_BUS_ADDRESS is undefined");
    return [];
  }
  const slash = address.indexOf("/");
  const comma = address.indexOf(",", slash);
  const path = slash === -1 ? "" : address.slice(slash, comma === -1 ? undefined : comma);
  return [["--setenv", "DBUS_SESSION_BUS_ADDRESS", address], ...(path ? [["--bind-try", path, path]] : [])];
});
