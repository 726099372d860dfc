// network: the host's network and its resolver and host files (read-only). Without it the
// guest has a network namespace of its own with only a loopback device: no host service on
// 127.0.0.1, no abstract socket of the host, nothing outside.
import type { SandboxOp } from "../../core/launch.ts";
import { permissionMapper } from "../perms/index.ts";

const FILES = ["/etc/host.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/resolv.conf"];

export const networkPermission = permissionMapper(
  { name: "network", bit: 11, order: 11 },
  () => FILES.map((path): SandboxOp => ({ op: "bind", mode: "ro", source: path, dest: path, optional: true })),
  { denied: () => [{ op: "unshare", namespace: "net" }] },
);
