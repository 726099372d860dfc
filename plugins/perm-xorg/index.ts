// xorg: $DISPLAY and the $XAUTHORITY cookie (read-only); the X socket is under /tmp, which
// every guest sees.
import { permissionMapper } from "../perms/index.ts";

export const xorgPermission = permissionMapper("xorg", ({ log }) => {
  const { DISPLAY: display, XAUTHORITY: xauthority } = process.env;
  if (!display) log.error("DISPLAY is undefined");
  if (!xauthority) log.error("XAUTHORITY is undefined");
  if (!display || !xauthority) return [];
  return [
    ["--ro-bind-try", xauthority, xauthority],
    ["--setenv", "XAUTHORITY", xauthority],
    ["--setenv", "DISPLAY", display],
  ];
});
