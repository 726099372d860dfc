// The plugin API. A plugin is a name plus `apply(runtime)`, which taps the runtime's hooks.
import type { Level } from "./errors.ts";
import type { LayerRecord } from "./image.ts";
import type { Runtime } from "./runtime.ts";

export interface Plugin {
  name: string;
  /** Names of the plugins this one needs in the same bundle (checked at start-up). */
  requires?: string[];
  apply(runtime: Runtime): void;
}

/** One `Usage:` block of a command's help (reference §15.3). */
export interface HelpUsage {
  usage: string;
  args?: [name: string, description: string][];
  notes?: string[];
  examples?: string[];
}

export interface Command {
  /** The word after the image name, e.g. `fim-perms`. */
  name: string;
  /** Not listed by fim-help (e.g. the default command). */
  hidden?: boolean;
  /** One line for `fim-help`. */
  summary: string;
  help: HelpUsage[];
  /**
   * Done in milliseconds (a run's start, reading or writing the configuration): the boot
   * stub tunes the engine for that (no baseline JIT, no heap warm-up thread: work a short
   * process throws away). The build lists these commands in the boot table.
   */
  brief?: boolean;
  /** Console level while it runs: "I" for configuration commands, "C" for guest runs. */
  consoleLevel?: Level;
  /**
   * Checks the arguments and returns the action to perform. Errors thrown here are
   * argument errors: the runtime adds `Could not parse arguments` (reference §2.3).
   */
  parse(args: string[], runtime: Runtime): Action;
}

/** What a parsed command does; resolves to the exit code (0 when nothing is returned). */
export type Action = () => Promise<number | void> | number | void;

/** The argv (after the program name) resolved to a command. */
export interface Invocation {
  command: string;
  args: string[];
}

/** What a distribution bundle compiles into its launcher. */
export interface Bundle {
  name: string;
  /** Reported as FIM_DIST and in `fim-version full`, e.g. BLUEPRINT. */
  distribution: string;
  plugins: Plugin[];
  /** The command that installs packages inside the image (run with fim-root; recipes use it). */
  installCommand?(packages: string[]): string[];
  /** The recipe remote a fresh image has (`fim-remote show`), written at build time. */
  remote?: string;
  /**
   * What `fim-layer commit` leaves out of a layer, relative to the root: the package
   * manager's downloaded lists and caches (not its database), which are not the application
   * and which the next refresh rebuilds. They stay in the upper directory.
   */
  commitExcludes?: string[];
  /**
   * A path of the package database that stands for one installed package, its first group
   * the package's name: `fim-layer list --long` says which packages a layer adds or removes.
   */
  packageEntry?: RegExp;
}

/** A compressed read-only layer format (e.g. EROFS), brought by a plugin. */
export interface LayerFormat {
  name: string;
  /** Recognises the format from the first HEAD_SIZE bytes of a layer. */
  detect(head: Buffer): boolean;
  /** Checks the header against the layer's size: a description of the damage, or undefined. */
  check(head: Buffer, size: number): string | undefined;
  /** Builds a layer from a directory; `entries` (paths relative to it) are all it may contain. */
  create(request: LayerCreateRequest): Promise<void>;
  /**
   * The command that mounts a layer read-only at `mountpoint`, run inside the run's
   * namespace; it must return once the mount is ready.
   */
  mountCommand(layer: LayerRecord, mountpoint: string): Promise<string[]>;
  /** Every entry of a layer, parents before children, without mounting it (`fim-layer list --long`). */
  walk?(layer: LayerRecord, visit: (entry: LayerEntry) => void): void;
  /**
   * Unpacks a layer into the new directory `dir` (`fim-layer squash`): modes, times, extended
   * attributes the caller can set, overlay whiteouts (character devices 0/0) and hard links.
   */
  extract?(layer: LayerRecord, dir: string): Promise<void>;
}

export type LayerEntryType = "file" | "directory" | "symlink" | "char" | "block" | "fifo" | "socket";

export interface LayerEntry {
  /** Relative to the layer's root, as a byte string (latin1), so names that are not UTF-8 survive. */
  path: string;
  type: LayerEntryType;
  /** Bytes of a file or symlink target; 0 for the rest. */
  size: number;
  /** Device number of a device (0/0 for an overlay whiteout). */
  rdev: number;
}

export interface LayerCreateRequest {
  source: string;
  output: string;
  /** FIM_COMPRESSION_LEVEL, 0..9. */
  level: number;
  /** Relative paths to leave out. */
  exclude: string[];
  /** Bytes of file data in the source (for progress). */
  bytes: number;
}

/** Bytes read from the start of a layer for detection and checks. */
export const HEAD_SIZE = 4096;
