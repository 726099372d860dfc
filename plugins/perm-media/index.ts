// media: removable media mount points, read-write.
import { permissionMapper } from "../perms/index.ts";

export const mediaPermission = permissionMapper({ name: "media", bit: 1, order: 2 }, () =>
  ["/media", "/run/media", "/mnt"].map((path) => ({ op: "bind", mode: "rw", source: path, dest: path, optional: true })),
);
