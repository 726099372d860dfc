// home: the host's $HOME, read-write, at the same path. Not for root runs (upstream too).
import { permissionMapper } from "../perms/index.ts";

export const homePermission = permissionMapper({ name: "home", bit: 0, order: 1, shows: () => (process.env.HOME ? [process.env.HOME] : []) }, ({ launch, log }) => {
  if (launch.identity.uid === 0) return [];
  const home = process.env.HOME;
  if (!home) {
    log.error("HOME environment variable is unset");
    return [];
  }
  return [{ op: "bind", mode: "rw", source: home, dest: home, optional: true }];
});
