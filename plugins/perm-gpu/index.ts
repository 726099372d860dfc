// gpu: DRI render nodes and NVIDIA device nodes. Not done yet: upstream's links from the
// host's NVIDIA driver libraries into the guest (untestable here: no such hardware).
import { readdirSync } from "node:fs";
import { permissionMapper } from "../perms/mapper.ts";

export const gpuPermission = permissionMapper("gpu", () => {
  let nvidia: string[] = [];
  try {
    nvidia = readdirSync("/dev").filter((name) => name.includes("nvidia"));
  } catch {
    // no /dev listing: nothing more to bind
  }
  return [["--dev-bind-try", "/dev/dri", "/dev/dri"], ...nvidia.map((name) => ["--dev-bind-try", `/dev/${name}`, `/dev/${name}`])];
});
