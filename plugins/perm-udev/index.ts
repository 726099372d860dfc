// udev: the udev database (device metadata), read-write.
import { permissionMapper } from "../perms/index.ts";

export const udevPermission = permissionMapper("udev", () => [["--bind-try", "/run/udev", "/run/udev"]]);
