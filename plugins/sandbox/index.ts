// The sandbox (reference §9): the base setup operations, and the run itself.
//
// A run is: this process, replaced by fim_supervise (so the image file is not executed while
// the guest runs) → fim_enter --join into the data directory's namespace holder (holder.ts:
// a private user+pid+mount namespace where we are root and the layers are mounted once; the
// first run starts it) → fim_supervise, the guest's own supervisor there → bwrap building the
// guest's sandbox from the typed operations → the guest.
// Files owned by root in the layers show up as the running user, as upstream's uid= mount.
import { mkdirSync, writeFileSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import { execve, keepAcrossExec } from "../../core/libc.ts";
import { PREPARE_STAGE, SANDBOX_STAGE, type GuestRoot, type Launch, type SandboxOp } from "../../core/launch.ts";
import { runtimeDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import { mark, printProfile } from "../../core/profile.ts";
import type { Runtime } from "../../core/runtime.ts";
import { guestDir } from "../identity/index.ts";
import { directoriesShown } from "../perms/registry.ts";
import { cwdWarning } from "../run/cwd.ts";
import { ensureApplets } from "./applets.ts";
import { checkHost } from "./checks.ts";
import { beginJoin, finishJoin, holderPlan, takeHandOver, takeHeadStart, type HandOver, type Holder, type HolderEntry } from "./holder.ts";
import { supervisorArgs } from "./plan.ts";
import { renderBwrap } from "./render.ts";
import { ignoreRunTrees, saveReplay, startRecording, takePassedThrough, type Recording } from "./replay.ts";

const NAME = "sandbox";

function rootOperations(root: GuestRoot): SandboxOp[] {
  if (root.kind === "directory") return [{ op: "bind", mode: "rw", source: root.path, dest: "/" }];
  return [{ op: "overlay", lowers: root.lowers, upper: root.upper, work: root.work, dest: "/" }];
}

/** Hands the process over to the supervisor: returns only by throwing. */
async function run(runtime: Runtime, operations: SandboxOp[], launch: Launch, joining: Promise<Holder>, recording: Recording | undefined, passed: Record<string, string>): Promise<never> {
  const log = runtime.logger(NAME);
  const { instance } = runtime.paths;
  const [bwrap, bash, sigdfl, supervise, enter] = await Promise.all(["bwrap", "bash", "fim_sigdfl", "fim_supervise", "fim_enter"].map((tool) => runtime.tool(tool)));
  mkdirSync(`${instance}/logs`, { recursive: true });

  // Planned while the holder mounts (the first run's) or is joined.
  // The guest is started by a shell so that a missing program gives the shell's own
  // "not found" and 127, and a builtin runs in it; fim_sigdfl gives it back the
  // SIGINT/SIGQUIT its parents ignore.
  // Its $0 is `--`, as upstream's `bash -c '"<program>" "$@"' --`: a builtin's error reads
  // `--: line 1: cd: /nope: No such file or directory` there too.
  const guestLauncher = launch.request.builtin ? '"$@"' : 'p=$1; shift; exec -- "$p" "$@"';
  const guest = renderBwrap(operations, (line) => log.debug(`Sandbox: ${line}`));
  const visible = operations.flatMap((op) => (op.op === "bind" && op.source === op.dest ? [op.dest] : []));
  // The guest's /tmp is always its own (documented): a directory there is not worth a line.
  const unseen = cwdWarning({ cwd: process.cwd(), visible: [...visible, "/tmp"], grantable: directoriesShown(runtime) });
  const { program, args } = launch.request;
  const sandbox = [bwrap!, "--die-with-parent", "--json-status-fd", "3", ...guest.args, "--", sigdfl!, bash!, "-c", guestLauncher, "--", program, ...launch.programArgs, ...args];
  log.debug(`Spawn command: ['${sandbox.join("','")}',]`);
  // Inside the holder's namespaces, the guest's own supervisor forwards signals to it.
  const ownPid = operations.some((op) => op.op === "unshare" && op.namespace === "pid");
  // It adopts what the guest leaves running and ends it with the guest: the namespace outlives
  // this run while others share it.
  const inside = supervisorArgs(supervise!, { status: `${instance}/guest.json`, statusInit: ownPid, endOrphans: true, open: guest.open, child: sandbox });

  const holder = await joining;
  mark("holder");
  log.debug(holder.started ? `Started the namespace holder ${holder.pid}` : `Joining the namespace holder ${holder.pid}`);
  if (unseen) log.critical(unseen);
  // Where fim-instance finds the namespace this run's guest lives in.
  writeFileSync(`${instance}/holder.json`, JSON.stringify({ "child-pid": holder.pid }));
  keepAcrossExec(holder.guestLock);
  const supervisor = supervisorArgs(supervise!, {
    after: launch.after,
    close: [holder.guestLock, ...launch.heldFds],
    companions: launch.companions,
    linger: [holder.guestLock, holder.pid],
    child: [enter!, "--join", String(holder.pid), ...inside],
  });
  const env = { ...process.env, ...launch.env };
  // Only a run that joined is recorded: a holder it started is seldom still there for the next start.
  if (recording && !holder.started) {
    try {
      saveReplay(runtime, recording, { path: supervise!, argv: supervisor, env, holder, heldFds: launch.heldFds });
    } catch (error) {
      log.debug(`Could not keep this run's plan for a replay: ${(error as Error).message}`); // the next start only plans again
    }
  }
  // From here the launcher process becomes the supervisor (same PID): the image file is no
  // longer executed while the guest runs, the guest's status becomes ours, and the shared
  // lock it keeps holds the namespace for this guest.
  mark("handover");
  printProfile();
  const failure = execve(supervise!, supervisor, { ...passed, ...env });
  throw new FimError(`Could not start the sandbox supervisor '${supervise}': ${failure}`, { level: "C" });
}

export const sandboxPlugin: Plugin = {
  name: NAME,
  requires: ["identity"],
  apply(runtime) {
    // One run per process: what it has started joining before its facts were known, and the
    // holder it joins.
    let entering: Promise<HolderEntry> | undefined;
    let joining: Promise<Holder> | undefined;
    // What the boot stub handed over for the holder, taken before relocation ends the hook.
    let handOver: HandOver = {};
    // What the run reads and prints, for the stub's replay of its plan.
    let recording: Recording | undefined;
    // What the desktop set for this start of the guest alone, kept from the planning.
    let passed: Record<string, string> = {};
    runtime.hooks.relocate.tapPromise({ name: NAME, stage: -10 }, async ({ command }) => {
      handOver = takeHandOver(process.env, command?.name);
      return undefined;
    });
    // Before every other tap of the run: all it reads and prints from here is recorded.
    runtime.hooks.launching.tapPromise({ name: NAME, stage: -1000 }, async () => {
      passed = takePassedThrough(process.env);
      recording = startRecording(handOver.replay, handOver.holder !== undefined);
      ignoreRunTrees(recording, runtime);
    });
    runtime.hooks.launching.tapPromise(NAME, async () => {
      entering = joining = undefined;
      checkHost(runtime.paths);
      const headStart = takeHeadStart(runtime, handOver);
      if (!headStart) return;
      entering = beginJoin(runtime, headStart);
      entering.catch(() => {}); // awaited (and reported) when the run joins; a run failing before it ends anyway
    });

    runtime.hooks.prepare.tapPromise({ name: NAME, stage: PREPARE_STAGE.checks }, async (launch) => {
      await ensureApplets(runtime);
      mkdirSync(guestDir(runtime.paths.instance), { recursive: true });
      launch.after.push({ kind: "remove", paths: [runtime.paths.instance] });
    });

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.root }, async (operations, launch) => [...operations, ...rootOperations(launch.root!)]);

    // What every guest gets: the image, a private /tmp, minimal /dev and /proc, and the
    // runtime's own files it runs (read-only). Nothing else of the host.
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.base }, async (operations, launch) => {
      if (!process.env.XDG_RUNTIME_DIR) runtime.logger(NAME).warn("Could not read variable 'XDG_RUNTIME_DIR'");
      const xdg = runtimeDir();
      runtime.logger(NAME).info(`XDG_RUNTIME_DIR: ${xdg}`);
      const { bin, sbin, instance } = runtime.paths;
      return [
        ...operations,
        { op: "dev", dest: "/dev" },
        { op: "proc", dest: "/proc" },
        { op: "tmpfs", dest: "/tmp" },
        { op: "bind", mode: "ro", source: "/sys", dest: "/sys" },
        // Read-only: a guest must not edit the host's groups (upstream bound it read-write).
        // Root runs keep the image's own file, so package scripts can add groups.
        ...(launch.request.root ? [] : [{ op: "bind", mode: "ro", source: "/etc/group", dest: "/etc/group", optional: true } as const]),
        // /run is runtime state: the guest's own, in memory. Sockets a permission binds there
        // (and $XDG_RUNTIME_DIR) get their mount points in it, never in <data>/root.
        { op: "tmpfs", dest: "/run" },
        ...(xdg.startsWith("/run/") || xdg.startsWith("/tmp/") ? [{ op: "dir", dest: xdg } as const] : [{ op: "tmpfs", dest: xdg } as const]),
        { op: "setenv", name: "XDG_RUNTIME_DIR", value: xdg },
        { op: "bind", mode: "ro", source: bin, dest: bin },
        { op: "bind", mode: "ro", source: sbin, dest: sbin },
        { op: "bind", mode: "ro", source: guestDir(instance), dest: guestDir(instance) },
      ];
    });

    // The holder mounts while the run is planned: started by the boot stub from the last
    // start's plan, or as soon as the root is final; joined when the guest starts.
    const join = async (launch: Launch) => finishJoin(runtime, entering ?? beginJoin(runtime), await holderPlan(runtime, launch), handOver);
    runtime.hooks.rooted.tapPromise(NAME, async (launch) => {
      joining = join(launch);
      joining.catch(() => {}); // awaited (and reported) by exec; a run failing before it ends anyway
    });
    runtime.hooks.exec.tapPromise(NAME, (operations, launch) => run(runtime, operations, launch, joining ?? join(launch), recording, passed));
  },
};
