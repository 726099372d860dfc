// tapable's hook classes, imported one by one (tapable's index loads every class it has), for
// the runtime's hook block and for plugins that publish hooks of their own.
//
// tapable compiles each hook's call into a JavaScript function made with `new Function` the
// first time it is called: fast for a hook called thousands of times (webpack's case), but a
// start calls each of a dozen hooks once, and parsing and compiling generated code that runs
// once cost ~2 ms of every run. These hooks run their taps in a plain loop instead, with the
// same semantics (order, stages, bail, waterfall, the three kinds of taps); a hook with
// interceptors beyond `register` (which acts when tapping) keeps tapable's compiled call.
import type * as Tapable from "tapable";
import AsyncSeriesBailHookClass from "tapable/lib/AsyncSeriesBailHook.js";
import AsyncSeriesHookClass from "tapable/lib/AsyncSeriesHook.js";
import AsyncSeriesWaterfallHookClass from "tapable/lib/AsyncSeriesWaterfallHook.js";
import HookMapClass from "tapable/lib/HookMap.js";
import SyncWaterfallHookClass from "tapable/lib/SyncWaterfallHook.js";

type Kind = "series" | "bail" | "waterfall";
type AnyFunction = (...args: unknown[]) => unknown;
interface CompileOptions {
  taps: { type: "sync" | "async" | "promise"; fn: AnyFunction; name: string }[];
  interceptors: Record<string, unknown>[];
  args: string[];
  type: "sync" | "async" | "promise";
}
interface Compilable {
  compile(options: CompileOptions): AnyFunction;
}

function callTap(tap: CompileOptions["taps"][number], args: unknown[]): unknown {
  if (tap.type === "sync") return tap.fn(...args);
  if (tap.type === "async") return new Promise((resolve, reject) => tap.fn(...args, (error: unknown, result: unknown) => (error ? reject(error) : resolve(result))));
  const promise = tap.fn(...args) as Promise<unknown> | undefined;
  if (!promise || typeof promise.then !== "function") throw new Error(`Tap function (tapPromise) did not return promise (returned ${String(promise)})`);
  return promise;
}

function interpreted(kind: Kind, original: Compilable["compile"]): Compilable["compile"] {
  return function compile(this: Compilable, options: CompileOptions): AnyFunction {
    if (options.interceptors.some((interceptor) => Object.keys(interceptor).some((key) => key !== "register" && key !== "name"))) return original.call(this, options);
    const taps = [...options.taps];
    const count = options.args.length;
    if (options.type === "sync") {
      return (...given: unknown[]) => {
        const args = given.slice(0, count);
        for (const tap of taps) {
          const result = callTap(tap, args);
          if (result === undefined) continue;
          if (kind === "bail") return result;
          if (kind === "waterfall") args[0] = result;
        }
        return kind === "waterfall" ? args[0] : undefined;
      };
    }
    const run = async (args: unknown[]) => {
      for (const tap of taps) {
        const result = await callTap(tap, args);
        if (result === undefined) continue;
        if (kind === "bail") return result;
        if (kind === "waterfall") args[0] = result;
      }
      return kind === "waterfall" ? args[0] : undefined;
    };
    if (options.type === "promise") return (...given: unknown[]) => run(given.slice(0, count));
    return (...given: unknown[]) => {
      const callback = given[count] as (error: unknown, result?: unknown) => void;
      run(given.slice(0, count)).then(
        (result) => callback(null, result),
        (error) => callback(error),
      );
    };
  };
}

function withLoop<C extends abstract new (...args: never[]) => object>(Class: unknown, kind: Kind): C {
  const make = Class as (...args: unknown[]) => Compilable;
  const Made = function (...args: unknown[]) {
    const hook = make(...args);
    hook.compile = interpreted(kind, hook.compile);
    return hook;
  };
  return Made as unknown as C;
}

export const AsyncSeriesBailHook = withLoop<typeof Tapable.AsyncSeriesBailHook>(AsyncSeriesBailHookClass, "bail");
export const AsyncSeriesHook = withLoop<typeof Tapable.AsyncSeriesHook>(AsyncSeriesHookClass, "series");
export const AsyncSeriesWaterfallHook = withLoop<typeof Tapable.AsyncSeriesWaterfallHook>(AsyncSeriesWaterfallHookClass, "waterfall");
export const SyncWaterfallHook = withLoop<typeof Tapable.SyncWaterfallHook>(SyncWaterfallHookClass, "waterfall");
export const HookMap = HookMapClass as typeof Tapable.HookMap;
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
