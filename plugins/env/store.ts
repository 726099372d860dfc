// The stored environment (reference §4.4): a JSON object in the environment slot.
import * as v from "valibot";
import { expandOrKeep } from "../../core/expand.ts";
import type { Logger } from "../../core/log.ts";
import { readJson, SLOTS } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";

export const EnvSchema = v.record(v.string(), v.string());
export type StoredEnv = v.InferOutput<typeof EnvSchema>;

export function readEnv(runtime: Runtime): StoredEnv {
  return readJson(runtime.image, SLOTS.environment, EnvSchema) ?? {};
}

/** The stored variables with their values expanded on the host, sorted by key. */
export async function expandedEnv(runtime: Runtime, log: Logger): Promise<[string, string][]> {
  const entries = Object.entries(readEnv(runtime)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const expanded: [string, string][] = [];
  for (const [key, value] of entries) expanded.push([key, await expandOrKeep(value, log)]);
  return expanded;
}
