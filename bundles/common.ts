// The plugins every bundle compiles in. A bundle spreads this list and adds its own.
import type { Plugin } from "../core/plugin.ts";
import { dispatchPlugin } from "../plugins/dispatch/index.ts";
import { permsPlugin } from "../plugins/perms/index.ts";
import { relocatePlugin } from "../plugins/relocate/index.ts";
import { unsharePlugin } from "../plugins/unshare/index.ts";

export const commonPlugins: Plugin[] = [relocatePlugin, dispatchPlugin, permsPlugin, unsharePlugin];
