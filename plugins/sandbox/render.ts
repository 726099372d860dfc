// The one place where sandbox operations become bwrap's arguments (bubblewrap's SetupOp
// list, read back into its command line), one debug line per operation.
import type { Namespace, SandboxOp } from "../../core/launch.ts";

export interface BwrapCommand {
  args: string[];
  /** Files bwrap reads from a descriptor (--seccomp, --ro-bind-data): [fd, path], for the supervisor to open. */
  open: [number, string][];
}

const BIND: Record<"ro" | "rw" | "dev", string> = { ro: "--ro-bind", rw: "--bind", dev: "--dev-bind" };
const UNSHARE: Record<Namespace, string> = {
  user: "--unshare-user",
  ipc: "--unshare-ipc",
  pid: "--unshare-pid",
  net: "--unshare-net",
  uts: "--unshare-uts",
  cgroup: "--unshare-cgroup",
};
/** Descriptors handed to bwrap start here (0–2 are stdio, 3 its status). */
const FIRST_FD = 10;

export function renderBwrap(operations: readonly SandboxOp[], debug: (line: string) => void = () => {}): BwrapCommand {
  const args: string[] = [];
  const open: [number, string][] = [];
  const unshared = new Set<string>();
  const unshare = (flag: string) => {
    if (!unshared.has(flag)) args.push(flag);
    unshared.add(flag);
  };
  const descriptor = (path: string) => {
    const fd = FIRST_FD + open.length;
    open.push([fd, path]);
    return String(fd);
  };
  for (const operation of operations) {
    const before = args.length;
    switch (operation.op) {
      case "bind":
        args.push(`${BIND[operation.mode]}${operation.optional ? "-try" : ""}`, operation.source, operation.dest);
        break;
      case "file":
        args.push("--ro-bind-data", descriptor(operation.source), operation.dest);
        break;
      case "overlay":
        for (const lower of operation.lowers) args.push("--overlay-src", lower);
        args.push("--overlay", operation.upper, operation.work, operation.dest);
        break;
      case "tmpfs":
      case "dev":
      case "proc":
      case "dir":
        args.push(`--${operation.op}`, operation.dest);
        break;
      case "symlink":
        args.push("--symlink", operation.target, operation.dest);
        break;
      case "setenv":
        args.push("--setenv", operation.name, operation.value);
        break;
      case "unsetenv":
        args.push("--unsetenv", operation.name);
        break;
      case "unshare":
        unshare(`${UNSHARE[operation.namespace]}${operation.optional && (operation.namespace === "user" || operation.namespace === "cgroup") ? "-try" : ""}`);
        break;
      case "identity":
        unshare(UNSHARE.user);
        args.push("--uid", String(operation.uid), "--gid", String(operation.gid));
        break;
      case "seccomp":
        args.push("--seccomp", descriptor(operation.program));
        break;
      default: {
        const unknown: never = operation;
        throw new Error(`unknown sandbox operation ${JSON.stringify(unknown)}`);
      }
    }
    debug(`${operation.op}: ${args.slice(before).join(" ") || "(already unshared)"}`);
  }
  return { args, open };
}
