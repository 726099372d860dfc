// wayland: the compositor's socket ($XDG_RUNTIME_DIR/$WAYLAND_DISPLAY, or an absolute path).
import { permissionMapper } from "../perms/index.ts";

export const waylandPermission = permissionMapper("wayland", ({ xdg, log }) => {
  const display = process.env.WAYLAND_DISPLAY;
  if (!display) {
    log.error("WAYLAND_DISPLAY is undefined");
    return [];
  }
  const socket = display.startsWith("/") ? display : `${xdg}/${display}`;
  return [
    ["--bind-try", socket, socket],
    ["--setenv", "WAYLAND_DISPLAY", display],
  ];
});
