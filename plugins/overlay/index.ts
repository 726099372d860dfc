// fim-overlay (reference §4.12, §8.3): which overlay type stacks the layers, and the
// dispatch of a run's root to the backend of that type (plugins register in registry.ts).
import { release } from "../../lib/node.ts";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import type { HelpUsage, Plugin } from "../../core/plugin.ts";
import { readSlot, SLOTS, updateSlot } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { casefoldEnabled } from "../casefold/index.ts";
import { fuseStatus } from "../layer-extract/fuse.ts";
import { overlayHooks } from "./registry.ts";

export { overlayHooks, registerOverlayType, type OverlayType } from "./registry.ts";

const NAME = "overlay";
/** The type used when nothing is stored (and what casefold and old kernels fall back from). */
const DEFAULT = "BWRAP";
const FALLBACK = "UNIONFS";

/** Whether a kernel of this release mounts overlayfs inside a user namespace (Linux 5.11+). */
export function kernelOverlayInUserns(release: string): boolean {
  const [major = 0, minor = 0] = release.split(/[.-]/).map(Number);
  return major > 5 || (major === 5 && minor >= 11);
}

/**
 * FIM_OVERLAY, then the stored byte, then BWRAP; casefold forces UNIONFS over BWRAP, and so
 * does a kernel whose overlayfs cannot be mounted in the sandbox's user namespace.
 */
export function decideOverlay(runtime: Runtime, casefold: boolean): string {
  const { types } = overlayHooks(runtime);
  // Upstream takes the lower-case word only.
  const fromEnv = process.env.FIM_OVERLAY;
  let type: string;
  if (fromEnv !== undefined && fromEnv === fromEnv.toLowerCase() && types.has(fromEnv.toUpperCase())) type = fromEnv.toUpperCase();
  else {
    const byte = readSlot(runtime.image, SLOTS.overlay)[0];
    type = [...types.values()].find((known) => known.byte === byte)?.type ?? DEFAULT;
  }
  const log = runtime.logger(NAME);
  if (type === DEFAULT && casefold) {
    log.warn("casefold cannot be used with bwrap overlayfs, falling back to unionfs");
    type = FALLBACK;
  }
  if (type === DEFAULT && !kernelOverlayInUserns(release())) {
    log.warn(`This kernel (${release()}) cannot mount overlays in a user namespace (Linux 5.11 and later can), falling back to unionfs`);
    type = FALLBACK;
  }
  // Without FUSE the layers are extracted directories (plugins/layer-extract): only the kernel's overlay stacks them.
  const fuse = fuseStatus(runtime);
  if (type !== DEFAULT && !fuse.usable && kernelOverlayInUserns(release())) {
    log.warn(`${type.toLowerCase()} needs FUSE, which cannot be used (${fuse.why}): falling back to bwrap`);
    type = DEFAULT;
  }
  return type;
}

export const overlayPlugin: Plugin = {
  name: NAME,
  requires: ["casefold"],
  apply(runtime) {
    const hooks = overlayHooks(runtime);
    // After casefold's fact (stage 0): the fall-back depends on it.
    runtime.hooks.facts.tapPromise({ name: NAME, stage: 10 }, async (facts) => ({ ...facts, overlay: decideOverlay(runtime, facts.casefold ?? casefoldEnabled(runtime)) }));

    runtime.hooks.overlay.tapPromise(NAME, async (launch) => {
      const hook = hooks.root.get(launch.facts.overlay);
      if (!hook) throw new FimError(`No plugin of this image provides the overlay type ${launch.facts.overlay}`, { level: "C" });
      return hook.promise(launch);
    });

    const words = () => [...hooks.types.values()].map((known) => known.type.toLowerCase());
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-overlay", {
        name: "fim-overlay",
        brief: true,
        summary: "Show or select the default overlay filesystem",
        get help(): HelpUsage[] {
          return [
            {
              usage: `fim-overlay <set> <${words().join("|")}>`,
              args: [["set", "Sets the default overlay filesystem to use"], ...[...hooks.types.values()].map((known): [string, string] => [known.type.toLowerCase(), known.summary])],
            },
            { usage: "fim-overlay <show>", args: [["show", "Shows the overlay filesystem in effect"]] },
          ];
        },
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-overlay' (<set|show>)", { level: "C" });
          const op = parseWord(opWord, ["set", "show"] as const, "Invalid overlay operation");
          if (op === "NONE") throw new FimError("Invalid operation for fim-overlay", { level: "C" });
          if (op === "show") {
            rejectTrailing("fim-overlay", rest);
            return () => write(1, `${decideOverlay(runtime, casefoldEnabled(runtime))}\n`);
          }
          const [typeWord, ...trailing] = rest;
          if (typeWord === undefined) throw new FimError("Missing argument for 'set'", { level: "C" });
          const type = parseWord(typeWord, words(), "Invalid overlay type");
          rejectTrailing("fim-overlay", trailing);
          return () =>
            withContext("Failed to set overlay type", () => {
              const known = hooks.types.get(type.toUpperCase());
              if (type === "NONE" || !known) throw new FimError("Invalid overlay option");
              updateSlot(runtime.image, SLOTS.overlay, () => Buffer.from([known.byte]));
            });
        },
      }),
    );
  },
};
