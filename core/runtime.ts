// The runtime: every lifecycle hook declared in one place, plus the few services that
// plugins share (the image, paths, loggers). It names no command, backend or permission.
import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, SyncWaterfallHook } from "./hooks.ts";
import { asFimError, FimError } from "./errors.ts";
import type { Image } from "./image.ts";
import { isComplete, Launch, missingFacts, type GuestRoot, type LaunchRequest, type RunFacts, type SandboxOp } from "./launch.ts";
import { logger, type Logger } from "./log.ts";
import type { Paths } from "./paths.ts";
import { mark, profileHooks, timed } from "./profile.ts";
import type { Bundle, Command, Invocation, LayerFormat } from "./plugin.ts";

export interface RelocateContext {
  argv: string[];
  /** The command argv resolves to (through the parse hook), if it resolves. */
  command: Command | undefined;
  args: string[];
}

export class Runtime {
  readonly hooks = Object.freeze({
    /** Each plugin adds the commands it brings. */
    commands: new SyncWaterfallHook<[Map<string, Command>]>(["commands"]),
    /** Each plugin adds the layer formats it brings. */
    layerFormats: new SyncWaterfallHook<[Map<string, LayerFormat>]>(["formats"]),
    /** Resolves a helper tool (bwrap, mkfs.erofs…) to an executable path. */
    tool: new AsyncSeriesBailHook<[string], string | undefined>(["name"]),
    /** Finds and reads the image file; may replace the process (execve) and never return. */
    relocate: new AsyncSeriesBailHook<[RelocateContext], Image | undefined>(["context"]),
    /** Resolves argv to a command; the first plugin that claims it wins. Runs before relocation. */
    parse: new AsyncSeriesBailHook<[string[]], Invocation | undefined>(["argv"]),
    /**
     * A run begins, before its facts: a plugin may start here what it can guess from an
     * earlier run (the sandbox's namespace holder starts mounting), and check it later.
     */
    launching: new AsyncSeriesHook<[LaunchRequest]>(["request"]),
    /** The facts of a run, computed once: each plugin returns the facts it owns added. */
    facts: new AsyncSeriesWaterfallHook<[Partial<RunFacts>, LaunchRequest]>(["facts", "request"]),
    /** Host checks and preparation before anything is mounted (named stages: PREPARE_STAGE). */
    prepare: new AsyncSeriesHook<[Launch]>(["launch"]),
    /** Plans the layer mounts (named stages: MOUNT_STAGE). */
    mount: new AsyncSeriesHook<[Launch]>(["launch"]),
    /** Stacks the layers and the upper directory into the guest's root; the overlay plugin dispatches by type. */
    overlay: new AsyncSeriesBailHook<[Launch], GuestRoot | undefined>(["launch"]),
    /** Optionally puts a case-insensitive view over the overlay. */
    casefold: new AsyncSeriesWaterfallHook<[GuestRoot, Launch]>(["root", "launch"]),
    /**
     * The guest's root is final (steps, root): a plugin may start making it here, while the
     * portal and the sandbox are planned (the sandbox's namespace holder starts mounting).
     */
    rooted: new AsyncSeriesHook<[Launch]>(["launch"]),
    /** Starts the host side of the portal. */
    portal: new AsyncSeriesHook<[Launch]>(["launch"]),
    /** Builds the ordered list of sandbox setup operations. */
    sandbox: new AsyncSeriesWaterfallHook<[SandboxOp[], Launch]>(["operations", "launch"]),
    /**
     * Runs the guest; the first plugin that claims it returns its exit code, or hands the
     * process over (execve) to a supervisor that runs `launch.after` when the guest ends.
     */
    exec: new AsyncSeriesBailHook<[SandboxOp[], Launch], number | undefined>(["operations", "launch"]),
    /** When the run ends in this process (an error, or an exec plugin that returned). */
    teardown: new AsyncSeriesHook<[Launch]>(["launch"]),
  });

  private imageValue: Image | undefined;
  private pathsValue: Paths | undefined;
  private commandTable: Map<string, Command> | undefined;
  private formatTable: Map<string, LayerFormat> | undefined;
  private readonly log = logger("runtime");

  constructor(readonly bundle: Bundle) {
    profileHooks(this.hooks);
    const names = new Set(bundle.plugins.map((plugin) => plugin.name));
    for (const plugin of bundle.plugins) {
      const missing = (plugin.requires ?? []).filter((name) => !names.has(name));
      if (missing.length > 0) {
        throw new FimError(`Plugin '${plugin.name}' requires ${missing.map((name) => `'${name}'`).join(", ")}, which the bundle '${bundle.name}' does not list`, { level: "C" });
      }
    }
    for (const plugin of bundle.plugins) timed(`apply/${plugin.name}`, () => plugin.apply(this));
  }

  get image(): Image {
    if (!this.imageValue) throw new FimError("Path to self is not defined", { level: "C" });
    return this.imageValue;
  }

  get paths(): Paths {
    if (!this.pathsValue) throw new FimError("Path to self is not defined", { level: "C" });
    return this.pathsValue;
  }

  attach(image: Image, paths: Paths): void {
    this.imageValue = image;
    this.pathsValue = paths;
  }

  get commands(): ReadonlyMap<string, Command> {
    this.commandTable ??= this.hooks.commands.call(new Map());
    return this.commandTable;
  }

  get layerFormats(): ReadonlyMap<string, LayerFormat> {
    this.formatTable ??= this.hooks.layerFormats.call(new Map());
    return this.formatTable;
  }

  /** The path of a helper tool; fails clearly when no plugin provides it. */
  async tool(name: string): Promise<string> {
    const path = await this.hooks.tool.promise(name);
    if (path === undefined) {
      throw new FimError(`Helper tool '${name}' is not available in this image: build the tool set (toolset/build.sh) and rebuild the image`);
    }
    return path;
  }

  logger(tag: string): Logger {
    return logger(tag);
  }

  /** Runs a guest through launching → facts → prepare → mount → overlay → casefold → rooted → portal → sandbox → exec → teardown. */
  async launch(request: LaunchRequest): Promise<number> {
    if (this.hooks.exec.taps.length === 0) {
      throw new FimError("This image has no sandbox plugin compiled in, so it cannot run programs", { level: "C" });
    }
    await this.hooks.launching.promise(request);
    const facts = await this.hooks.facts.promise({}, request);
    if (!isComplete(facts)) {
      throw new FimError(`This image cannot run programs: no plugin of its bundle provides ${missingFacts(facts).join(", ")}`, { level: "C" });
    }
    mark("facts");
    const launch = new Launch(request, facts);
    try {
      await this.hooks.prepare.promise(launch);
      mark("prepare");
      await this.hooks.mount.promise(launch);
      mark("mount");
      launch.root = await this.hooks.overlay.promise(launch);
      if (!launch.root) {
        throw new FimError(`No overlay plugin claimed this run (the bundle lists none for the overlay type ${facts.overlay})`, { level: "C" });
      }
      mark("overlay");
      launch.root = await this.hooks.casefold.promise(launch.root, launch);
      await this.hooks.rooted.promise(launch);
      await this.hooks.portal.promise(launch);
      const operations = await this.hooks.sandbox.promise([], launch);
      mark("sandbox");
      const code = await this.hooks.exec.promise(operations, launch);
      mark("exec");
      if (code === undefined) throw new FimError("No sandbox plugin claimed this run", { level: "C" });
      return code;
    } finally {
      await this.hooks.teardown.promise(launch).catch((error) => this.log.error(asFimError(error).message));
      await launch.unwind((error) => this.log.error(asFimError(error).message));
    }
  }
}
