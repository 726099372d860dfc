// usb: raw USB devices (/dev/bus/usb, /dev/usb).
import { permissionMapper } from "../perms/index.ts";

export const usbPermission = permissionMapper({ name: "usb", bit: 8, order: 10 }, () =>
  ["/dev/bus/usb", "/dev/usb"].map((path) => ({ op: "bind", mode: "dev", source: path, dest: path, optional: true })),
);
