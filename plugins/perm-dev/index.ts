// dev: the whole host /dev (applied last, so it supersedes the other device binds).
import { permissionMapper } from "../perms/index.ts";

export const devPermission = permissionMapper("dev", () => [["--dev-bind-try", "/dev", "/dev"]]);
