// input: input devices (/dev/input, /dev/uinput).
import { permissionMapper } from "../perms/index.ts";

export const inputPermission = permissionMapper("input", () => ["/dev/input", "/dev/uinput"].map((path) => ["--dev-bind-try", path, path]));
