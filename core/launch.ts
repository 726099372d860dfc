// The state of one sandboxed run as it travels through the lifecycle hooks.
export interface LaunchRequest {
  program: string;
  args: string[];
  /** Run as uid 0 inside the sandbox (fim-root, FIM_ROOT=1). */
  root: boolean;
}

/** One bubblewrap-style setup operation, e.g. ["--ro-bind-try", src, dst]. Kept in order. */
export type SandboxOp = string[];

/** Who the guest runs as (reference §9.6). */
export interface Identity {
  uid: number;
  gid: number;
  user: string;
  home: string;
  shell: string;
}

/**
 * Where each kind of plugin taps the `sandbox` waterfall (tapable stages: lower first), so
 * the bwrap arguments come out in the reference's order whatever the bundle's plugin order.
 */
export const SANDBOX_STAGE = {
  root: -100,
  environment: -50,
  identity: -40,
  base: -30,
  binds: -20,
  devices: -10,
  permissions: 0, // + the permission's bit number
  namespaces: 50,
  portal: 60,
} as const;

export class Launch {
  /** Lower directories, lowest first, filled by `mount`. */
  readonly lowerDirs: string[] = [];
  /**
   * Commands run inside the run's private user+mount namespace before the sandbox starts
   * (FUSE mounts live there, so they vanish with it). Each must return once it is ready.
   */
  readonly steps: string[][] = [];
  /** How the guest's `/` is made, set by `overlay` (and `casefold`). */
  rootOps: SandboxOp[] = [];
  identity: Identity | undefined;
  /**
   * Host commands run after the guest whatever happens to it (clean-up). The process that
   * runs them may not be this one: the exec plugin can hand the run over to a supervisor.
   */
  readonly after: string[][] = [];
  /**
   * Host commands started beside the sandbox (e.g. the portal's daemon); they must end by
   * themselves when the supervisor does.
   */
  readonly companions: string[][] = [];
  /** Descriptors the supervisor keeps (e.g. a held lock) and the guest must not inherit. */
  readonly heldFds: number[] = [];
  /** Environment added for the guest. */
  readonly env: Record<string, string> = {};
  /** Scratch space for plugins, keyed by plugin name. */
  readonly state = new Map<string, unknown>();
  private readonly undo: (() => Promise<void> | void)[] = [];

  constructor(readonly request: LaunchRequest) {}

  /** Registers a clean-up step; steps run in reverse order of registration. */
  defer(step: () => Promise<void> | void): void {
    this.undo.push(step);
  }

  /** Clean-up when the run ends in this process: the `after` commands, then the deferred steps. */
  async unwind(onError: (error: unknown) => void): Promise<void> {
    for (const command of this.after.splice(0)) {
      const result = Bun.spawnSync(command, { stdout: "ignore", stderr: "ignore" });
      if (result.exitCode !== 0) onError(new Error(`clean-up '${command.join(" ")}' failed`));
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
