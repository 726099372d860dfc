// The plugins every bundle compiles in. A bundle spreads this list and adds its own.
import type { Plugin } from "../core/plugin.ts";
import { bindPlugin } from "../plugins/bind/index.ts";
import { bootPlugin } from "../plugins/boot/index.ts";
import { casefoldPlugin } from "../plugins/casefold/index.ts";
import { dispatchPlugin } from "../plugins/dispatch/index.ts";
import { envPlugin } from "../plugins/env/index.ts";
import { helpPlugin } from "../plugins/help/index.ts";
import { layerPlugin } from "../plugins/layer/index.ts";
import { erofsPlugin } from "../plugins/layer-erofs/index.ts";
import { notifyPlugin } from "../plugins/notify/index.ts";
import { overlayPlugin } from "../plugins/overlay/index.ts";
import { permsPlugin } from "../plugins/perms/index.ts";
import { relocatePlugin } from "../plugins/relocate/index.ts";
import { remotePlugin } from "../plugins/remote/index.ts";
import { toolsPlugin } from "../plugins/tools/index.ts";
import { unsharePlugin } from "../plugins/unshare/index.ts";
import { versionPlugin } from "../plugins/version/index.ts";

export const commonPlugins: Plugin[] = [
  relocatePlugin,
  dispatchPlugin,
  toolsPlugin,
  erofsPlugin,
  helpPlugin,
  versionPlugin,
  permsPlugin,
  unsharePlugin,
  envPlugin,
  bindPlugin,
  bootPlugin,
  remotePlugin,
  overlayPlugin,
  casefoldPlugin,
  notifyPlugin,
  layerPlugin,
];
