// Stored bindings (reference §4.5): {"0": {"src","dst","type"}, ...} in the bindings slot.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { readJson, SLOTS } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";

export const BIND_TYPES = ["ro", "rw", "dev"] as const;
export type BindType = (typeof BIND_TYPES)[number];

const BindingSchema = lazy(() =>
  v.object({
    src: v.pipe(v.string(), v.minLength(1)),
    dst: v.pipe(v.string(), v.minLength(1)),
    type: v.picklist(BIND_TYPES),
  }),
);
export type Binding = v.InferOutput<ReturnType<typeof BindingSchema>>;

export const BindingsSchema = lazy(() => v.record(v.pipe(v.string(), v.regex(/^\d+$/)), BindingSchema()));

/** Bindings in index order (numeric: upstream sorted "10" before "2"). */
export function ordered(bindings: Record<string, Binding> = {}): Binding[] {
  return Object.keys(bindings)
    .sort((a, b) => Number(a) - Number(b))
    .map((key) => bindings[key]!);
}

export function readBindings(runtime: Runtime): Binding[] {
  return ordered(readJson(runtime.image, SLOTS.bindings, BindingsSchema()));
}
