// The sandbox (reference §9): the base setup operations, and the run itself.
//
// A run is: this process, replaced by a bash supervisor (so the image file is not executed
// while the guest runs) → bwrap that makes a private user+pid+mount namespace where we are
// root (the "namespace holder", killed with the supervisor: --die-with-parent) → a script as
// its pid 1 that mounts the layers with FUSE there (so the mounts and FUSE servers vanish
// with the namespace, whatever kills us) → bwrap building the guest's sandbox (overlay root,
// identity, binds, permissions) → the guest.
// Files owned by root in the layers show up as the running user, as upstream's uid= mount.
import { mkdirSync } from "node:fs";
import { FimError } from "../../core/errors.ts";
import { SANDBOX_STAGE, type Launch } from "../../core/launch.ts";
import { ensureRuntimeHostDir, runtimeDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { execve } from "../../core/libc.ts";
import { mark, printProfile } from "../../core/profile.ts";
import { ensureApplets } from "./applets.ts";
import { checkHost } from "./checks.ts";
import { superviseScript } from "./script.ts";

const NAME = "sandbox";

/** Hands the process over to the supervisor: returns only by throwing. */
async function run(runtime: Runtime, operations: string[][], launch: Launch): Promise<never> {
  const log = runtime.logger(NAME);
  const { instance } = runtime.paths;
  const [bwrap, bash, sigdfl] = await Promise.all([runtime.tool("bwrap"), runtime.tool("bash"), runtime.tool("fim_sigdfl")]);
  mkdirSync(`${instance}/logs`, { recursive: true });

  // The guest is started by a shell so that a missing program gives the shell's own
  // "not found" and 127; fim_sigdfl gives it back the SIGINT/SIGQUIT its parents ignore.
  const guestLauncher = 'p=$1; shift; exec -- "$p" "$@"';
  const sandbox = [bwrap, "--json-status-fd", "3", ...operations.flat(), "--", sigdfl, bash, "-c", guestLauncher, "--", launch.request.program, ...launch.request.args];
  log.debug(`Bwrap root: ${launch.rootOps.flat().join(" ")}`);
  log.debug(`Spawn command: ['${sandbox.join("','")}',]`);
  const inside = superviseScript({ before: launch.steps, log: `${instance}/logs/fuse.log`, child: sandbox, status: `${instance}/guest.json` });
  const holder = [
    bwrap, "--unshare-user", "--unshare-pid", "--as-pid-1", "--uid", "0", "--gid", "0", "--cap-add", "ALL",
    "--dev-bind", "/", "/", "--proc", "/proc", "--die-with-parent", "--json-status-fd", "3",
    "--", sigdfl, bash, "-c", inside,
  ];
  const supervisor = superviseScript({ child: holder, status: `${instance}/holder.json`, after: launch.after, close: launch.heldFds, companions: launch.companions });
  // From here the launcher process becomes the supervisor (same PID): the image file is no
  // longer executed while the guest runs, and the guest's status becomes ours.
  mark("handover");
  printProfile();
  const failure = execve(bash, [bash, "-c", supervisor], { ...process.env, ...launch.env });
  throw new FimError(`Could not start the sandbox supervisor '${bash}': ${failure}`, { level: "C" });
}

export const sandboxPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.mount.tapPromise({ name: NAME, stage: -100 }, async (launch) => {
      checkHost(runtime.paths);
      await ensureApplets(runtime);
      mkdirSync(runtime.paths.instance, { recursive: true });
      launch.after.push([await runtime.tool("busybox"), "rm", "-rf", runtime.paths.instance]);
    });

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.root }, async (operations, launch) => [...operations, ...launch.rootOps]);

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.base }, async (operations, launch) => {
      if (!process.env.XDG_RUNTIME_DIR) runtime.logger(NAME).warn("Could not read variable 'XDG_RUNTIME_DIR'");
      const xdg = runtimeDir();
      runtime.logger(NAME).info(`XDG_RUNTIME_DIR: ${xdg}`);
      ensureRuntimeHostDir();
      return [
        ...operations,
        ["--dev", "/dev"],
        ["--proc", "/proc"],
        ["--bind", "/tmp", "/tmp"],
        ["--bind", "/sys", "/sys"],
        // Read-only: a guest must not edit the host's groups (upstream bound it read-write).
        // Root runs keep the image's own file, so package scripts can add groups.
        ...(launch.identity?.uid === 0 && launch.request.root ? [] : [["--ro-bind-try", "/etc/group", "/etc/group"]]),
        ["--setenv", "XDG_RUNTIME_DIR", xdg],
        ["--ro-bind-try", "/", runtime.paths.runtimeHost],
      ];
    });

    runtime.hooks.exec.tapPromise(NAME, (operations, launch) => run(runtime, operations, launch));
  },
};
