// Plans the layer mounts (reference §8.1–§8.2): every layer, lowest first, at
// <instance>/layers/<i>, mounted by its format's tool inside the run's namespace.
import { mkdirSync } from "../../lib/fs.ts";
import { basename } from "../../lib/path.ts";
import { MOUNT_STAGE } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { discoverLayers } from "../layer/index.ts";
import { layersExtracted } from "../layer-extract/index.ts";

const NAME = "mount-layers";

export const mountLayersPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.mount.tapPromise({ name: NAME, stage: MOUNT_STAGE.layers }, async (launch) => {
      if (layersExtracted(launch)) return; // no FUSE: plugins/layer-extract made them directories
      const layers = await discoverLayers(runtime, log);
      for (const [index, layer] of layers.entries()) {
        const mountpoint = `${runtime.paths.mounts}/layers/${index}`;
        mkdirSync(mountpoint, { recursive: true });
        log.debug(`Mounting layer from '${basename(layer.path)}' with offset '${layer.offset}'`);
        launch.steps.push({ kind: "run", argv: await layer.format.mountCommand(layer, mountpoint) });
        launch.lowerDirs.push(mountpoint);
      }
      // A mount tool may exit 0 having mounted nothing (erofsfuse does): check them all at once.
      if (layers.length > 0) launch.steps.push({ kind: "mounted", dirs: [...launch.lowerDirs] });
    });
  },
};
