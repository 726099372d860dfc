// The stored environment (reference §4.4): a JSON object in the environment slot.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { expandOrKeep } from "../../core/expand.ts";
import type { Logger } from "../../core/log.ts";
import { readJson, SLOTS } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";

export const EnvSchema = lazy(() => v.record(v.string(), v.string()));
export type StoredEnv = v.InferOutput<ReturnType<typeof EnvSchema>>;

export function readEnv(runtime: Runtime): StoredEnv {
  return readJson(runtime.image, SLOTS.environment, EnvSchema()) ?? {};
}

/**
 * The stored variables expanded on the host, sorted by stored key. Keys are expanded too, as
 * upstream expands the whole `K=V` (`$(echo $META)=WORLD` gives `NAME=WORLD` when META=NAME);
 * a key that would expand to nothing or to a name with `=` is kept as stored.
 */
export async function expandedEnv(runtime: Runtime, log: Logger): Promise<[string, string][]> {
  const entries = Object.entries(readEnv(runtime)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const expanded: [string, string][] = [];
  for (const [key, value] of entries) {
    const name = /[$`~\\'"]/.test(key) ? await expandOrKeep(key, log) : key;
    expanded.push([name === "" || name.includes("=") ? key : name, await expandOrKeep(value, log)]);
  }
  return expanded;
}
