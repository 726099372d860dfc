// dbus_system: the system bus socket.
import { permissionMapper } from "../perms/index.ts";

export const dbusSystemPermission = permissionMapper("dbus_system", () => [["--bind-try", "/run/dbus/system_bus_socket", "/run/dbus/system_bus_socket"]]);
