// One sandboxed run as it travels through the lifecycle hooks: what was asked, the facts
// computed once for it, and the plan the hooks build (steps, root, companions, clean-ups).
import { removeAll } from "./tree.ts";

export interface LaunchRequest {
  program: string;
  args: string[];
  /** `program` is a builtin of the guest's shell (`echo`, `command`, `type`…): that shell runs it itself. */
  builtin?: boolean;
  /** Run as uid 0 inside the sandbox (fim-root, FIM_ROOT=1). */
  root: boolean;
}

/** Who the guest runs as (reference §9.6). */
export interface Identity {
  uid: number;
  gid: number;
  user: string;
  home: string;
  shell: string;
}

/**
 * Facts several plugins need, computed once per run by the `facts` hook (each owner returns
 * its part) before anything else happens. A run starts only when every fact is known.
 */
export interface RunFacts {
  /** The stored environment, expanded once (a `$(…)` in it runs once per run). */
  environment: Readonly<Record<string, string>>;
  identity: Identity;
  /** Granted permission names. */
  permissions: ReadonlySet<string>;
  /** The overlay type in effect (FIM_OVERLAY, the stored byte, fall-backs applied). */
  overlay: string;
  casefold: boolean;
}

export const FACT_NAMES = ["environment", "identity", "permissions", "overlay", "casefold"] as const satisfies readonly (keyof RunFacts)[];

export function missingFacts(facts: Partial<RunFacts>): string[] {
  return FACT_NAMES.filter((name) => facts[name] === undefined);
}

export function isComplete(facts: Partial<RunFacts>): facts is RunFacts {
  return missingFacts(facts).length === 0;
}

export type Namespace = "user" | "ipc" | "pid" | "net" | "uts" | "cgroup";
export type BindMode = "ro" | "rw" | "dev";

/**
 * One setup operation of the guest's sandbox, in the spirit of bubblewrap's SetupOp: a value,
 * rendered to bwrap's arguments in one place (the sandbox plugin), applied in order.
 */
export type SandboxOp =
  | { op: "bind"; mode: BindMode; source: string; dest: string; optional?: boolean }
  /** The content of a host file, read-only at `dest` (a copy: the guest cannot reach the file). */
  | { op: "file"; source: string; dest: string }
  | { op: "overlay"; lowers: string[]; upper: string; work: string; dest: string }
  | { op: "tmpfs"; dest: string }
  | { op: "dev"; dest: string }
  | { op: "proc"; dest: string }
  | { op: "dir"; dest: string }
  | { op: "symlink"; target: string; dest: string }
  | { op: "setenv"; name: string; value: string }
  | { op: "unsetenv"; name: string }
  | { op: "unshare"; namespace: Namespace; optional?: boolean }
  | { op: "identity"; uid: number; gid: number }
  /** A classic BPF program (a file) loaded before the guest starts. */
  | { op: "seccomp"; program: string };

/** How the guest's `/` is made, as the overlay (and casefold) plugins decide. */
export type GuestRoot =
  /** A mounted directory bound as the root. */
  | { kind: "directory"; path: string; caseInsensitive?: boolean }
  /** bwrap's kernel overlay of the lower directories under an upper one. */
  | { kind: "overlay"; lowers: string[]; upper: string; work: string };

/** A step run inside the run's namespace before the guest starts; each ends ready or fails the run. */
export type PrepareStep =
  /** Runs to completion; exit status 0 means ready (mount tools that daemonize). */
  | { kind: "run"; argv: string[] }
  /** Keeps running; prints the line `ready` once it is (our FUSE server). */
  | { kind: "ready"; argv: string[] }
  /** Each directory must be a mount point (a mount tool may exit 0 having mounted nothing). */
  | { kind: "mounted"; dirs: string[] }
  /** A kernel mount made by the supervisor itself (mount(2): no mount command to start). */
  | { kind: "mount"; type: string; source: string; options: string; target: string };

/** A clean-up after the guest. */
export type AfterStep =
  /** A host command. */
  | { kind: "run"; argv: string[] }
  /** Trees removed in place, symbolic links not followed (no process to start at the end of a run). */
  | { kind: "remove"; paths: string[] };

export class Launch {
  /** Lower directories, lowest first, filled by `mount`. */
  readonly lowerDirs: string[] = [];
  /**
   * Steps run inside the run's private user+mount namespace before the sandbox starts
   * (FUSE mounts live there, so they vanish with it).
   */
  readonly steps: PrepareStep[] = [];
  /** Set by `overlay` (and `casefold`). */
  root: GuestRoot | undefined;
  /**
   * Clean-up after the guest, whatever happens to it, in order. The process that does it may
   * not be this one: the exec plugin can hand the run over to a supervisor.
   */
  readonly after: AfterStep[] = [];
  /** Host commands started beside the sandbox (e.g. the portal's daemon), ended with it. */
  readonly companions: string[][] = [];
  /** Descriptors the supervisor keeps (e.g. a held lock) and the guest must not inherit. */
  readonly heldFds: number[] = [];
  /** Environment added for the guest. */
  readonly env: Record<string, string> = {};
  /** Arguments put before the program's own (e.g. bash's --rcfile). */
  readonly programArgs: string[] = [];
  private readonly undo: (() => Promise<void> | void)[] = [];

  constructor(
    readonly request: LaunchRequest,
    readonly facts: RunFacts,
  ) {}

  get identity(): Identity {
    return this.facts.identity;
  }

  /** Registers a clean-up step; steps run in reverse order of registration. */
  defer(step: () => Promise<void> | void): void {
    this.undo.push(step);
  }

  /** Clean-up when the run ends in this process: the `after` commands, then the deferred steps. */
  async unwind(onError: (error: unknown) => void): Promise<void> {
    for (const step of this.after.splice(0)) {
      if (step.kind === "remove") {
        for (const path of step.paths) removeAll(path, onError);
        continue;
      }
      const result = Bun.spawnSync(step.argv, { stdout: "ignore", stderr: "ignore" });
      if (result.exitCode !== 0) onError(new Error(`clean-up '${step.argv.join(" ")}' failed`));
    }
    while (this.undo.length > 0) {
      const step = this.undo.pop()!;
      try {
        await step();
      } catch (error) {
        onError(error);
      }
    }
  }
}

/**
 * Where each kind of plugin taps the `sandbox` waterfall (tapable stages: lower first), so
 * the operations come out in the reference's order whatever the bundle's plugin order.
 * A permission taps at `permissions` + its order.
 */
export const SANDBOX_STAGE = {
  root: -100,
  environment: -50,
  identity: -40,
  base: -30,
  binds: -20,
  devices: -10,
  permissions: 0,
  namespaces: 50,
  portal: 60,
  security: 70,
} as const;

/** Named stages of the `prepare` and `mount` hooks. */
// The instance directory is claimed first: the sandbox's checks make directories in it.
export const PREPARE_STAGE = { instance: -300, integration: -200, checks: -100 } as const;
export const MOUNT_STAGE = { layers: 0, extraLayers: 10 } as const;
