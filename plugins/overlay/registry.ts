// The overlay-type registry this plugin owns: each backend plugin registers its type, its
// stored byte and a summary, and taps `root.for(TYPE)` to make the guest's root. A type
// is one folder listed in a bundle.
import { AsyncSeriesBailHook, HookMap, hooksOf } from "../../core/hooks.ts";
import type { GuestRoot, Launch } from "../../core/launch.ts";
import { isIdentifier } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";

export interface OverlayType {
  /** Upper case, as `fim-overlay show` prints it, e.g. BWRAP. */
  type: string;
  /** The byte stored in the reserved space's overlay slot (upstream's values for upstream's types). */
  byte: number;
  /** One line for `fim-overlay`'s help. */
  summary: string;
}

export const overlayHooks = hooksOf(() => ({
  types: new Map<string, OverlayType>(),
  /** Makes the guest's root for a type (keyed by the upper-case type). */
  root: new HookMap(() => new AsyncSeriesBailHook<[Launch], GuestRoot | undefined>(["launch"])),
}));

/** Registers a backend's type and its root maker; a taken type or byte is refused at start-up. */
export function registerOverlayType(runtime: object, plugin: string, type: OverlayType, makeRoot: (launch: Launch) => Promise<GuestRoot>): void {
  const { types, root } = overlayHooks(runtime);
  for (const known of types.values()) {
    if (known.type === type.type || known.byte === type.byte) {
      throw new FimError(`Overlay plugin '${plugin}' registers type ${type.type} (byte ${type.byte}), which '${known.type}' already uses`, { level: "C" });
    }
  }
  if (!isIdentifier(type.type, "upper") || type.byte < 1 || type.byte > 255) {
    throw new FimError(`Overlay plugin '${plugin}' registers an invalid type '${type.type}' (byte ${type.byte})`, { level: "C" });
  }
  types.set(type.type, type);
  root.for(type.type).tapPromise(plugin, makeRoot);
}
