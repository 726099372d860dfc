// network: the host's resolver and host files, read-only. It does NOT isolate or grant the
// network itself: the guest shares the host's network unless 'fim-unshare add net'.
import { permissionMapper } from "../perms/index.ts";

export const networkPermission = permissionMapper("network", () =>
  ["/etc/host.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf"].map((path) => ["--ro-bind-try", path, path]),
);
