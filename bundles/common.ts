// The plugins every bundle compiles in. A bundle spreads this list and adds its own.
import type { Plugin } from "../core/plugin.ts";
import { bindPlugin } from "../plugins/bind/index.ts";
import { bootPlugin } from "../plugins/boot/index.ts";
import { casefoldPlugin } from "../plugins/casefold/index.ts";
import { desktopPlugin } from "../plugins/desktop/index.ts";
import { dispatchPlugin } from "../plugins/dispatch/index.ts";
import { envPlugin } from "../plugins/env/index.ts";
import { helpPlugin } from "../plugins/help/index.ts";
import { layerPlugin } from "../plugins/layer/index.ts";
import { erofsPlugin } from "../plugins/layer-erofs/index.ts";
import { notifyPlugin } from "../plugins/notify/index.ts";
import { overlayPlugin } from "../plugins/overlay/index.ts";
import { permsPlugin } from "../plugins/perms/index.ts";
import { portalPlugin } from "../plugins/portal/index.ts";
import { relocatePlugin } from "../plugins/relocate/index.ts";
import { recipePlugin } from "../plugins/recipe/index.ts";
import { remotePlugin } from "../plugins/remote/index.ts";
import { toolsPlugin } from "../plugins/tools/index.ts";
import { runtimeDirPlugin } from "../plugins/runtime-dir/index.ts";
import { unsharePlugin } from "../plugins/unshare/index.ts";
import { versionPlugin } from "../plugins/version/index.ts";
import { identityPlugin } from "../plugins/identity/index.ts";
import { instancePlugin } from "../plugins/instance/index.ts";
import { mountLayersPlugin } from "../plugins/mount-layers/index.ts";
import { layerExtractPlugin } from "../plugins/layer-extract/index.ts";
import { overlayBwrapPlugin } from "../plugins/overlay-bwrap/index.ts";
import { overlayFusePlugin } from "../plugins/overlay-fuse/index.ts";
import { unionfsPlugin } from "../plugins/unionfs/index.ts";
import { audioPermission } from "../plugins/perm-audio/index.ts";
import { dbusSystemPermission } from "../plugins/perm-dbus-system/index.ts";
import { dbusUserPermission } from "../plugins/perm-dbus-user/index.ts";
import { devPermission } from "../plugins/perm-dev/index.ts";
import { gpuPermission } from "../plugins/perm-gpu/index.ts";
import { homePermission } from "../plugins/perm-home/index.ts";
import { inputPermission } from "../plugins/perm-input/index.ts";
import { mediaPermission } from "../plugins/perm-media/index.ts";
import { networkPermission } from "../plugins/perm-network/index.ts";
import { opticalPermission } from "../plugins/perm-optical/index.ts";
import { shmPermission } from "../plugins/perm-shm/index.ts";
import { udevPermission } from "../plugins/perm-udev/index.ts";
import { usbPermission } from "../plugins/perm-usb/index.ts";
import { waylandPermission } from "../plugins/perm-wayland/index.ts";
import { xorgPermission } from "../plugins/perm-xorg/index.ts";
import { runPlugin } from "../plugins/run/index.ts";
import { sandboxPlugin } from "../plugins/sandbox/index.ts";
import { seccompPlugin } from "../plugins/seccomp/index.ts";

export const commonPlugins: Plugin[] = [
  relocatePlugin,
  dispatchPlugin,
  toolsPlugin,
  runtimeDirPlugin,
  erofsPlugin,
  helpPlugin,
  versionPlugin,
  permsPlugin,
  unsharePlugin,
  envPlugin,
  bindPlugin,
  bootPlugin,
  remotePlugin,
  recipePlugin,
  overlayPlugin,
  casefoldPlugin,
  notifyPlugin,
  desktopPlugin,
  layerPlugin,
  instancePlugin,
  // Running programs: the lifecycle's plugins.
  runPlugin,
  layerExtractPlugin,
  mountLayersPlugin,
  overlayBwrapPlugin,
  overlayFusePlugin,
  unionfsPlugin,
  sandboxPlugin,
  seccompPlugin,
  identityPlugin,
  portalPlugin,
  ...[gpuPermission, homePermission, mediaPermission, audioPermission, waylandPermission, xorgPermission],
  ...[dbusUserPermission, dbusSystemPermission, udevPermission, inputPermission, usbPermission, networkPermission],
  ...[shmPermission, opticalPermission, devPermission],
];
