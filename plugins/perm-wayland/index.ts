// wayland: the compositor's socket ($XDG_RUNTIME_DIR/$WAYLAND_DISPLAY, or an absolute path).
import { permissionMapper } from "../perms/index.ts";

export const waylandPermission = permissionMapper({ name: "wayland", bit: 3, order: 4 }, ({ xdg, log }) => {
  const display = process.env.WAYLAND_DISPLAY;
  if (!display) {
    log.error("WAYLAND_DISPLAY is undefined");
    return [];
  }
  const socket = display.startsWith("/") ? display : `${xdg}/${display}`;
  return [
    { op: "bind", mode: "rw", source: socket, dest: socket, optional: true },
    { op: "setenv", name: "WAYLAND_DISPLAY", value: display },
  ];
});
