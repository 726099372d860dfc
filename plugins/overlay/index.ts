// fim-overlay (reference §4.12, §8.3): which overlay type stacks the layers.
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync } from "node:fs";
import { keepAcrossExec, tryLockExclusive } from "../../core/libc.ts";
import type { Launch } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readSlot, SLOTS, updateSlot } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { release } from "node:os";
import { casefoldEnabled } from "../casefold/index.ts";
import { fuseStatus } from "../layer-extract/fuse.ts";

const NAME = "overlay";
export const OVERLAY_TYPES = ["bwrap", "overlayfs", "unionfs"] as const;
export type OverlayType = "BWRAP" | "OVERLAYFS" | "UNIONFS";
const BYTE_OF: Record<OverlayType, number> = { BWRAP: 0x02, OVERLAYFS: 0x04, UNIONFS: 0x08 };

/** Whether a kernel of this release mounts overlayfs inside a user namespace (Linux 5.11+). */
export function kernelOverlayInUserns(release: string): boolean {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  return major > 5 || (major === 5 && minor >= 11);
}

/**
 * FIM_OVERLAY, then the stored byte, then BWRAP; casefold forces UNIONFS over BWRAP, and so
 * does a kernel whose overlayfs cannot be mounted in the sandbox's user namespace.
 */
export function effectiveOverlay(runtime: Runtime): OverlayType {
  // Asked by every overlay plugin of a run: decided (and warned about) once.
  let type = decided.get(runtime);
  if (type === undefined) decided.set(runtime, (type = decideOverlay(runtime)));
  return type;
}

const decided = new WeakMap<Runtime, OverlayType>();

function decideOverlay(runtime: Runtime): OverlayType {
  const fromEnv = process.env.FIM_OVERLAY;
  let type: OverlayType;
  if (fromEnv !== undefined && (OVERLAY_TYPES as readonly string[]).includes(fromEnv)) type = fromEnv.toUpperCase() as OverlayType;
  else {
    const byte = readSlot(runtime.image, SLOTS.overlay)[0];
    type = (Object.keys(BYTE_OF) as OverlayType[]).find((name) => BYTE_OF[name] === byte) ?? "BWRAP";
  }
  if (type === "BWRAP" && casefoldEnabled(runtime)) {
    runtime.logger(NAME).warn("casefold cannot be used with bwrap overlayfs, falling back to unionfs");
    type = "UNIONFS";
  }
  if (type === "BWRAP" && !kernelOverlayInUserns(release())) {
    runtime.logger(NAME).warn(`This kernel (${release()}) cannot mount overlays in a user namespace (Linux 5.11 and later can), falling back to unionfs`);
    type = "UNIONFS";
  }
  // Without FUSE the layers are extracted directories (plugins/layer-extract): only the kernel's overlay stacks them.
  const fuse = fuseStatus(runtime);
  if (type !== "BWRAP" && !fuse.usable && kernelOverlayInUserns(release())) {
    runtime.logger(NAME).warn(`${type.toLowerCase()} needs FUSE, which cannot be used (${fuse.why}): falling back to bwrap`);
    type = "BWRAP";
  }
  return type;
}

const BUSY_WAIT_MS = 60_000;

/**
 * The BWRAP and OVERLAYFS types write the data directory's upper layer directly: one run at
 * a time. Waits up to a minute for another run to end, then says so (reference §8.2).
 */
export async function lockDataDirectory(runtime: Runtime, launch: Launch): Promise<void> {
  const { data } = runtime.paths;
  mkdirSync(data, { recursive: true });
  const fd = openSync(`${data}/.lock`, "a");
  const deadline = Date.now() + BUSY_WAIT_MS;
  let told = false;
  while (!tryLockExclusive(fd)) {
    if (!told) {
      // Said at once (and at the level a run shows): the wait is otherwise silent.
      runtime.logger(NAME).critical(`Another instance is running on ${data}: waiting up to ${BUSY_WAIT_MS / 1000} s for it to end (runs with separate FIM_DIR_DATA directories can share an image)`);
      told = true;
    }
    if (Date.now() > deadline) {
      closeSync(fd);
      throw new FimError(`Another instance is running on ${data} (timeout after ${BUSY_WAIT_MS}ms)`, { level: "C" });
    }
    await Bun.sleep(100);
  }
  // The supervisor that outlives this process holds the lock until the run ends.
  keepAcrossExec(fd);
  launch.heldFds.push(fd);
  launch.defer(() => closeSync(fd));
}

function removeWorkDirectory(work: string): void {
  // The kernel leaves work/work with mode 000: open it up so that it can be removed.
  if (existsSync(`${work}/work`)) chmodSync(`${work}/work`, 0o700);
  rmSync(work, { recursive: true, force: true });
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * <data>/work/<pid>, the overlay's work directory for this run, removed after it; those of
 * runs that were killed before they could clean up are swept first.
 */
export async function workDirectory(runtime: Runtime, launch: Launch): Promise<string> {
  const parent = `${runtime.paths.data}/work`;
  const work = `${parent}/${process.pid}`;
  mkdirSync(work, { recursive: true });
  for (const name of readdirSync(parent)) {
    if (/^\d+$/.test(name) && Number(name) !== process.pid && !alive(Number(name))) removeWorkDirectory(`${parent}/${name}`);
  }
  const busybox = await runtime.tool("busybox");
  launch.after.push([busybox, "chmod", "-R", "u+rwx", work], [busybox, "rm", "-rf", work], [busybox, "rmdir", parent]);
  return work;
}

export const overlayPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-overlay", {
        name: "fim-overlay",
        summary: "Show or select the default overlay filesystem",
        help: [
          {
            usage: "fim-overlay <set> <overlayfs|unionfs|bwrap>",
            args: [["set", "Sets the default overlay filesystem to use"], ["bwrap", "Uses bubblewrap's kernel overlay (the default)"], ["overlayfs", "Uses fuse-overlayfs"], ["unionfs", "Uses the union filesystem"]],
          },
          { usage: "fim-overlay <show>", args: [["show", "Shows the overlay filesystem in effect"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-overlay' (<set|show>)", { level: "C" });
          const op = parseWord(opWord, ["set", "show"] as const, "Invalid overlay operation");
          if (op === "NONE") throw new FimError("Invalid operation for fim-overlay", { level: "C" });
          if (op === "show") {
            rejectTrailing("fim-overlay", rest);
            return () => write(1, `${effectiveOverlay(runtime)}\n`);
          }
          const [typeWord, ...trailing] = rest;
          if (typeWord === undefined) throw new FimError("Missing argument for 'set'", { level: "C" });
          const type = parseWord(typeWord, OVERLAY_TYPES, "Invalid overlay type");
          rejectTrailing("fim-overlay", trailing);
          return () =>
            withContext("Failed to set overlay type", () => {
              if (type === "NONE") throw new FimError("Invalid overlay option");
              updateSlot(runtime.image, SLOTS.overlay, () => Buffer.from([BYTE_OF[type.toUpperCase() as OverlayType]]));
            });
        },
      }),
    );
  },
};
