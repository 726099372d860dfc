// udev: the udev database (device metadata), read-write.
import { permissionMapper } from "../perms/index.ts";

export const udevPermission = permissionMapper({ name: "udev", bit: 7, order: 8 }, () => [{ op: "bind", mode: "rw", source: "/run/udev", dest: "/run/udev", optional: true }]);
