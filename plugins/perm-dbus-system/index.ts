// dbus_system: the system bus socket.
import { permissionMapper } from "../perms/index.ts";

const SOCKET = "/run/dbus/system_bus_socket";

export const dbusSystemPermission = permissionMapper({ name: "dbus_system", bit: 6, order: 7 }, () => [{ op: "bind", mode: "rw", source: SOCKET, dest: SOCKET, optional: true }]);
