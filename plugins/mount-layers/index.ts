// Plans the layer mounts (reference §8.1–§8.2): every layer, lowest first, at
// <instance>/layers/<i>, mounted by its format's tool inside the run's namespace.
import { mkdirSync } from "node:fs";
import { basename } from "node:path";
import type { Plugin } from "../../core/plugin.ts";
import { discoverLayers } from "../layer/index.ts";
import { EXTRACTED_LAYERS } from "../layer-extract/index.ts";

const NAME = "mount-layers";
const ARE_MOUNTED =
  'declare -A up; while read -r _ _ _ _ point _; do up[$point]=1; done </proc/self/mountinfo; for dir; do [[ ${up[$dir]} ]] || { echo "nothing is mounted on $dir"; exit 1; }; done';

export const mountLayersPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.mount.tapPromise(NAME, async (launch) => {
      if (launch.state.has(EXTRACTED_LAYERS)) return; // no FUSE: plugins/layer-extract made them directories
      const layers = await discoverLayers(runtime, log);
      for (const [index, layer] of layers.entries()) {
        const mountpoint = `${runtime.paths.instance}/layers/${index}`;
        mkdirSync(mountpoint, { recursive: true });
        log.debug(`Mounting layer from '${basename(layer.path)}' with offset '${layer.offset}'`);
        launch.steps.push(await layer.format.mountCommand(layer, mountpoint));
        launch.lowerDirs.push(mountpoint);
      }
      // A mount tool may exit 0 having mounted nothing (erofsfuse does): check them all at once.
      if (layers.length > 0) launch.steps.push([await runtime.tool("bash"), "-c", ARE_MOUNTED, "--", ...launch.lowerDirs]);
    });
  },
};
