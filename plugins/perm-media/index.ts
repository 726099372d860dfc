// media: removable media mount points, read-write.
import { permissionMapper } from "../perms/index.ts";

const MEDIA = ["/media", "/run/media", "/mnt"];

export const mediaPermission = permissionMapper({ name: "media", bit: 1, order: 2, shows: () => MEDIA }, () =>
  MEDIA.map((path) => ({ op: "bind", mode: "rw", source: path, dest: path, optional: true })),
);
