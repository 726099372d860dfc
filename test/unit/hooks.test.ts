// The runtime's hooks run their taps in a loop rather than tapable's generated code: the same
// scenarios give the same results on both, tap by tap.
import { describe, expect, test } from "bun:test";
import TapableBail from "tapable/lib/AsyncSeriesBailHook.js";
import TapableSeries from "tapable/lib/AsyncSeriesHook.js";
import TapableWaterfall from "tapable/lib/AsyncSeriesWaterfallHook.js";
import TapableSyncWaterfall from "tapable/lib/SyncWaterfallHook.js";
import { AsyncSeriesBailHook, AsyncSeriesHook, AsyncSeriesWaterfallHook, HookMap, SyncWaterfallHook } from "../../core/hooks.ts";

type Made = { tap: Function; tapAsync?: Function; tapPromise?: Function; promise?: Function; call?: Function; callAsync?: Function; intercept: Function };
const pair = (ours: new (...args: any[]) => unknown, theirs: unknown, args: string[]) => [new ours(args) as Made, new (theirs as new (...a: any[]) => unknown)(args) as Made] as const;

/** Taps of every kind, with stages and `before`, logging the order they run in. */
function tapAll(hook: Made, log: string[], results: Record<string, unknown> = {}) {
  hook.tapPromise!({ name: "late", stage: 10 }, async (a: unknown, b: unknown) => (log.push(`late:${a}:${b}`), results.late));
  hook.tap("sync", (a: unknown) => (log.push(`sync:${a}`), results.sync));
  hook.tapAsync!("callback", (a: unknown, _b: unknown, done: (e: unknown, r?: unknown) => void) => (log.push(`callback:${a}`), setTimeout(() => done(null, results.callback), 1)));
  hook.tapPromise!({ name: "early", stage: -10 }, async (a: unknown) => (log.push(`early:${a}`), results.early));
  hook.tap({ name: "first", before: "sync" }, (a: unknown) => (log.push(`first:${a}`), results.first));
}

describe("hooks without generated code behave as tapable's", () => {
  test("series: every tap in order (stages, before), results ignored", async () => {
    const [ours, theirs] = pair(AsyncSeriesHook, TapableSeries, ["a", "b"]);
    const logs: string[][] = [[], []];
    tapAll(ours, logs[0]!, { sync: 1 });
    tapAll(theirs, logs[1]!, { sync: 1 });
    expect(await ours.promise!(1, 2, 3)).toBe(await theirs.promise!(1, 2, 3));
    expect(logs[0]).toEqual(logs[1]!);
    expect(logs[0]).toEqual(["early:1", "first:1", "sync:1", "callback:1", "late:1:2"]);
    // tapable's generated code reads the taps from `_x`; the loop never makes it.
    expect((ours as unknown as { _x?: unknown })._x).toBeUndefined();
    expect((theirs as unknown as { _x?: unknown })._x).toBeDefined();
  });

  test("bail: the first result that is not undefined ends it", async () => {
    for (const results of [{}, { callback: "from callback" }, { early: 0 }, { first: null, late: "x" }]) {
      const [ours, theirs] = pair(AsyncSeriesBailHook, TapableBail, ["a", "b"]);
      const logs: string[][] = [[], []];
      tapAll(ours, logs[0]!, results);
      tapAll(theirs, logs[1]!, results);
      expect(await ours.promise!("x", "y")).toEqual(await theirs.promise!("x", "y"));
      expect(logs[0]).toEqual(logs[1]!);
    }
  });

  test("waterfall: each result that is not undefined replaces the first argument", async () => {
    const [ours, theirs] = pair(AsyncSeriesWaterfallHook, TapableWaterfall, ["value", "extra"]);
    for (const hook of [ours, theirs]) {
      hook.tapPromise!("add", async (value: number) => value + 1);
      hook.tap("keep", () => undefined);
      hook.tapAsync!("double", (value: number, _extra: unknown, done: (e: unknown, r?: unknown) => void) => done(null, value * 2));
    }
    expect(await ours.promise!(3, "e")).toBe(await theirs.promise!(3, "e"));
    expect(await ours.promise!(3, "e")).toBe(8);
    const [sync, theirSync] = pair(SyncWaterfallHook, TapableSyncWaterfall, ["map"]);
    for (const hook of [sync, theirSync]) {
      hook.tap("a", (map: string[]) => [...map, "a"]);
      hook.tap({ name: "b", stage: -1 }, (map: string[]) => [...map, "b"]);
      hook.tap("none", () => undefined);
    }
    expect(sync.call!([])).toEqual(theirSync.call!([]));
    expect(sync.call!([])).toEqual(["b", "a"]);
  });

  test("errors: a throwing tap, a rejected promise, a callback's error, a tapPromise that returns no promise", async () => {
    for (const add of [
      (hook: Made) => hook.tap("throws", () => {
        throw new Error("thrown");
      }),
      (hook: Made) => hook.tapPromise!("rejects", async () => {
        throw new Error("rejected");
      }),
      (hook: Made) => hook.tapAsync!("fails", (_a: unknown, done: (e: unknown) => void) => done(new Error("called back"))),
      (hook: Made) => hook.tapPromise!("no promise", () => 1),
    ]) {
      const [ours, theirs] = pair(AsyncSeriesHook, TapableSeries, ["a"]);
      const after: string[] = [];
      for (const hook of [ours, theirs]) {
        add(hook);
        hook.tap("after", () => void after.push("ran"));
      }
      const mine = await ours.promise!(1).then(() => "resolved", (error: Error) => error.message);
      const tapable = await theirs.promise!(1).then(() => "resolved", (error: Error) => error.message);
      expect(mine).toBe(tapable);
      expect(after).toEqual([]);
    }
  });

  test("callAsync, taps added after a call, HookMap, and interceptors", async () => {
    const hook = new AsyncSeriesBailHook<[number], number | undefined>(["n"]);
    hook.tap("none", () => undefined);
    expect(await hook.promise(1)).toBeUndefined();
    hook.tap("double", (n) => n * 2); // resets the compiled call
    expect(await new Promise((resolve) => hook.callAsync(4, (_error, result) => resolve(result)))).toBe(8);
    const map = new HookMap(() => new AsyncSeriesHook<[string[]]>(["log"]));
    map.for("x").tap("x", (log) => void log.push("x"));
    const log: string[] = [];
    await map.get("x")!.promise(log);
    expect(log).toEqual(["x"]);
    // A `call` interceptor is honoured (tapable's own code then runs the hook).
    const seen: number[] = [];
    const intercepted = new AsyncSeriesHook<[number]>(["n"]);
    intercepted.intercept({ call: (n: number) => void seen.push(n), register: (tap) => tap });
    intercepted.tap("t", (n) => void seen.push(n * 10));
    await intercepted.promise(7);
    expect(seen).toEqual([7, 70]);
  });
});
