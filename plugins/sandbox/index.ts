// The sandbox (reference §9): the base setup operations, and the run itself.
//
// A run is: this process (the supervisor, never the image file itself) → bwrap that makes a
// private user+pid+mount namespace where we are root (the "namespace holder", killed with
// us: --die-with-parent) → a script as its pid 1 that mounts the layers with FUSE there
// (so the mounts and FUSE servers vanish with the namespace, whatever kills us) → bwrap
// building the guest's sandbox (overlay root, identity, binds, permissions) → the guest.
// Files owned by root in the layers show up as the running user, as upstream's uid= mount.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync } from "node:fs";
import { isatty } from "node:tty";
import { SANDBOX_STAGE, type Launch } from "../../core/launch.ts";
import { ensureRuntimeHostDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { ensureApplets } from "./applets.ts";
import { checkHost } from "./checks.ts";
import { FORWARDED, stageScript } from "./script.ts";

const NAME = "sandbox";

/** $XDG_RUNTIME_DIR, or /run/user/<uid>. */
export function runtimeDir(runtime: Runtime): string {
  const dir = process.env.XDG_RUNTIME_DIR;
  if (dir) return dir;
  runtime.logger(NAME).warn("Could not read variable 'XDG_RUNTIME_DIR'");
  return `/run/user/${process.getuid?.() ?? 0}`;
}

/** Host pid of the namespace holder's pid 1, from its --json-status-fd file. */
function holderPid(statusFile: string): number | undefined {
  try {
    const match = /"child-pid":\s*(\d+)/.exec(readFileSync(statusFile, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

async function run(runtime: Runtime, operations: string[][], launch: Launch): Promise<number> {
  const log = runtime.logger(NAME);
  const { instance } = runtime.paths;
  const [bwrap, bash, sigdfl] = await Promise.all([runtime.tool("bwrap"), runtime.tool("bash"), runtime.tool("fim_sigdfl")]);
  mkdirSync(`${instance}/logs`, { recursive: true });

  // The guest is started by a shell so that a missing program gives the shell's own
  // "not found" and 127; fim_sigdfl undoes the SIGINT/SIGQUIT ignoring of the supervisors.
  const guestLauncher = 'p=$1; shift; exec -- "$p" "$@"';
  const sandbox = [bwrap, "--json-status-fd", "3", ...operations.flat(), "--", sigdfl, bash, "-c", guestLauncher, "--", launch.request.program, ...launch.request.args];
  log.debug(`Bwrap root: ${launch.rootOps.flat().join(" ")}`);
  log.debug(`Spawn command: ['${sandbox.join("','")}',]`);
  const script = stageScript({ steps: launch.steps, sandbox, status: `${instance}/guest.json`, log: `${instance}/logs/fuse.log` });
  const holderStatus = `${instance}/holder.json`;
  const holder = [
    bwrap, "--unshare-user", "--unshare-pid", "--as-pid-1", "--uid", "0", "--gid", "0", "--cap-add", "ALL",
    "--dev-bind", "/", "/", "--proc", "/proc", "--die-with-parent", "--json-status-fd", "3",
    // fim_sigdfl: the script must be able to trap SIGINT, which its parents ignore.
    "--", sigdfl, bash, "-c", script,
  ];
  const statusFd = openSync(holderStatus, "w");
  // Terminal Ctrl-C and Ctrl-\ must not kill the supervisors (the guest gets them directly).
  const child = Bun.spawn([bash, "-c", 'trap "" INT QUIT; exec "$@"', "bash", ...holder], {
    stdio: ["inherit", "inherit", "inherit", statusFd],
    env: { ...process.env, ...launch.env },
  });
  closeSync(statusFd);
  const interactive = isatty(0);
  const forward = (signal: NodeJS.Signals) => () => {
    // A terminal's SIGINT/SIGQUIT already reached the guest (same process group): do not double it.
    if ((signal === "SIGINT" || signal === "SIGQUIT") && interactive) return;
    const pid = holderPid(holderStatus);
    if (pid) process.kill(pid, signal);
  };
  const handlers = FORWARDED.map((name) => [`SIG${name}` as NodeJS.Signals, forward(`SIG${name}` as NodeJS.Signals)] as const);
  for (const [signal, handler] of handlers) process.on(signal, handler);
  try {
    const code = await child.exited;
    // The holder exits with the guest's status; killed itself, it has none (upstream: 125).
    return child.signalCode ? 125 : code;
  } finally {
    for (const [signal, handler] of handlers) process.off(signal, handler);
  }
}

export const sandboxPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.mount.tapPromise({ name: NAME, stage: -100 }, async (launch) => {
      checkHost(runtime.paths);
      await ensureApplets(runtime);
      mkdirSync(runtime.paths.instance, { recursive: true });
      launch.defer(() => rmSync(runtime.paths.instance, { recursive: true, force: true }));
    });

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.root }, async (operations, launch) => [...operations, ...launch.rootOps]);

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.base }, async (operations) => {
      const xdg = runtimeDir(runtime);
      runtime.logger(NAME).info(`XDG_RUNTIME_DIR: ${xdg}`);
      ensureRuntimeHostDir();
      return [
        ...operations,
        ["--dev", "/dev"],
        ["--proc", "/proc"],
        ["--bind", "/tmp", "/tmp"],
        ["--bind", "/sys", "/sys"],
        ["--bind-try", "/etc/group", "/etc/group"],
        ["--setenv", "XDG_RUNTIME_DIR", xdg],
        ["--ro-bind-try", "/", runtime.paths.runtimeHost],
      ];
    });

    runtime.hooks.exec.tapPromise(NAME, (operations, launch) => run(runtime, operations, launch));
  },
};
