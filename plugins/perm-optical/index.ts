// optical: CD/DVD drives (/dev/srN and /dev/sgN), up to the first N where neither exists.
import { existsSync } from "../../lib/fs.ts";
import type { SandboxOp } from "../../core/launch.ts";
import { permissionMapper } from "../perms/index.ts";

export const opticalPermission = permissionMapper({ name: "optical", bit: 14, order: 13 }, () => {
  const operations: SandboxOp[] = [];
  for (let i = 0; i < 256; i++) {
    const found = [`/dev/sr${i}`, `/dev/sg${i}`].filter((path) => existsSync(path));
    if (found.length === 0) break;
    for (const path of found) operations.push({ op: "bind", mode: "dev", source: path, dest: path, optional: true });
  }
  return operations;
});
