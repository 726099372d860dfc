// input: input devices (/dev/input, /dev/uinput).
import { permissionMapper } from "../perms/index.ts";

export const inputPermission = permissionMapper({ name: "input", bit: 9, order: 9 }, () =>
  ["/dev/input", "/dev/uinput"].map((path) => ({ op: "bind", mode: "dev", source: path, dest: path, optional: true })),
);
