// usb: raw USB devices (/dev/bus/usb, /dev/usb).
import { permissionMapper } from "../perms/index.ts";

export const usbPermission = permissionMapper("usb", () => ["/dev/bus/usb", "/dev/usb"].map((path) => ["--dev-bind-try", path, path]));
