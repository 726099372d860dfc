// tapable's hook classes, imported one by one (tapable's index loads every class it has), for
// the runtime's hook block and for plugins that publish hooks of their own.
import type * as Tapable from "tapable";
import AsyncSeriesBailHookClass from "tapable/lib/AsyncSeriesBailHook.js";
import AsyncSeriesHookClass from "tapable/lib/AsyncSeriesHook.js";
import AsyncSeriesWaterfallHookClass from "tapable/lib/AsyncSeriesWaterfallHook.js";
import HookMapClass from "tapable/lib/HookMap.js";
import SyncWaterfallHookClass from "tapable/lib/SyncWaterfallHook.js";

export const AsyncSeriesBailHook = AsyncSeriesBailHookClass as typeof Tapable.AsyncSeriesBailHook;
export const AsyncSeriesHook = AsyncSeriesHookClass as typeof Tapable.AsyncSeriesHook;
export const AsyncSeriesWaterfallHook = AsyncSeriesWaterfallHookClass as typeof Tapable.AsyncSeriesWaterfallHook;
export const HookMap = HookMapClass as typeof Tapable.HookMap;
export const SyncWaterfallHook = SyncWaterfallHookClass as typeof Tapable.SyncWaterfallHook;
export type { AsyncSeriesBailHook as AsyncSeriesBailHookType, HookMap as HookMapType } from "tapable";

/**
 * Hooks a plugin publishes for its extension point, one set per runtime (webpack's
 * `getCompilationHooks` pattern): the owner and its extensions get the same object.
 */
export function hooksOf<T extends object>(create: () => T): (runtime: object) => T {
  const made = new WeakMap<object, T>();
  return (runtime) => {
    let hooks = made.get(runtime);
    if (!hooks) made.set(runtime, (hooks = create()));
    return hooks;
  };
}
