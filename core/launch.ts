// The state of one sandboxed run as it travels through the lifecycle hooks.
export interface LaunchRequest {
  program: string;
  args: string[];
  /** Run as uid 0 inside the sandbox (fim-root, FIM_ROOT=1, stored UID=0). */
  root: boolean;
}

/** One bubblewrap-style setup operation, e.g. ["--ro-bind-try", src, dst]. Kept in order. */
export type SandboxOp = string[];

export class Launch {
  /** Lower directories, lowest first, filled by `mount`. */
  readonly lowerDirs: string[] = [];
  /** The directory that becomes the guest's `/`, set by `overlay` / `casefold`. */
  rootDir: string | undefined;
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

  async unwind(onError: (error: unknown) => void): Promise<void> {
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
