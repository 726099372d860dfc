// The UNIONFS overlay type arrives with the TypeScript FUSE server; until then a run that
// selects it (fim-overlay set unionfs, FIM_OVERLAY=unionfs, or casefold) fails clearly.
import { FimError } from "../../core/errors.ts";
import type { Plugin } from "../../core/plugin.ts";
import { effectiveOverlay } from "../overlay/index.ts";

const NAME = "overlay-unionfs";

export const overlayUnionfsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.overlay.tapPromise(NAME, async () => {
      if (effectiveOverlay(runtime) !== "UNIONFS") return undefined;
      throw new FimError(
        "The UNIONFS overlay (also used by casefold) is not available in this version: choose another with 'fim-overlay set bwrap' or 'fim-overlay set overlayfs' (and 'fim-casefold off')",
        { level: "C" },
      );
    });
  },
};
