// xorg: the X server's socket for $DISPLAY (the guest's /tmp is private) and its cookie,
// read-only: $XAUTHORITY, or ~/.Xauthority when it is unset.
import { existsSync } from "../../lib/fs.ts";
import { homedir } from "../../lib/node.ts";
import type { SandboxOp } from "../../core/launch.ts";
import { permissionMapper } from "../perms/index.ts";

/** The local socket of a display such as `:0` or `unix:1.0`; undefined for a remote (TCP) display. */
export function x11Socket(display: string): string | undefined {
  const match = /^(?:unix)?:(\d+)(?:\.\d+)?$/.exec(display);
  return match ? `/tmp/.X11-unix/X${match[1]}` : undefined;
}

export const xorgPermission = permissionMapper({ name: "xorg", bit: 4, order: 5 }, ({ log }) => {
  const display = process.env.DISPLAY;
  if (!display) {
    log.error("DISPLAY is undefined");
    return [];
  }
  const operations: SandboxOp[] = [{ op: "setenv", name: "DISPLAY", value: display }];
  const socket = x11Socket(display);
  if (socket) operations.push({ op: "bind", mode: "rw", source: socket, dest: socket, optional: true });
  const cookie = process.env.XAUTHORITY || `${process.env.HOME || homedir()}/.Xauthority`;
  if (existsSync(cookie)) {
    operations.push({ op: "bind", mode: "ro", source: cookie, dest: cookie }, { op: "setenv", name: "XAUTHORITY", value: cookie });
  } else {
    log.debug(`No X authority file at '${cookie}': the X server must accept the guest without one`);
  }
  return operations;
});
