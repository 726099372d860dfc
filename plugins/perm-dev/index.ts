// dev: the whole host /dev (applied last, so it supersedes the other device binds).
import { permissionMapper } from "../perms/index.ts";

export const devPermission = permissionMapper({ name: "dev", bit: 12, order: 14 }, () => [{ op: "bind", mode: "dev", source: "/dev", dest: "/dev", optional: true }]);
