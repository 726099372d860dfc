// media: removable media mount points, read-write.
import { permissionMapper } from "../perms/index.ts";

export const mediaPermission = permissionMapper("media", () => ["/media", "/run/media", "/mnt"].map((path) => ["--bind-try", path, path]));
