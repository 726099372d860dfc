// network's resolver files: bound read-only over the image's, except nsswitch.conf under
// fim-root, which package scripts edit (the bind made their rename fail with EBUSY).
import { expect, test } from "bun:test";
import type { SandboxOp } from "../../core/launch.ts";
import { memoryRuntime } from "../helpers/runtime.ts";

const binds = (operations: SandboxOp[]) => operations.flatMap((op) => (op.op === "bind" && op.dest.startsWith("/etc/") && op.dest !== "/etc/group" ? [op.dest] : []));

test("network binds the host's four resolver files; fim-root keeps the image's nsswitch.conf", async () => {
  const memory = await memoryRuntime();
  await memory.command("fim-perms", "add", "network");
  expect(binds((await memory.plan()).operations).sort()).toEqual(["/etc/host.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/passwd", "/etc/resolv.conf"]);
  expect(binds((await memory.plan({ root: true })).operations).sort()).toEqual(["/etc/host.conf", "/etc/hosts", "/etc/resolv.conf"]);
});
