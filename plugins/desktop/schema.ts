// The desktop configuration (reference §13.1): the setup file and the stored JSON.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { compareBytes } from "../../core/json.ts";

/** Canonical order, as upstream stores and prints them. */
export const ITEMS = ["ENTRY", "MIMETYPE", "ICON", "NONE"] as const;
export type Item = (typeof ITEMS)[number];

/** The setup file: `icon` is only needed by setup; integrations default to none. */
export const SetupSchema = lazy(() =>
  v.object({
    name: v.string("name must be a string"),
    icon: v.optional(v.unknown()),
    categories: v.array(v.string("categories must be strings"), "categories must be an array of strings"),
    integrations: v.optional(v.unknown()),
  }),
);

/** What is stored in the desktop slot (without the icon). */
export const StoredSchema = lazy(() =>
  v.object({
    name: v.string(),
    categories: v.array(v.string()),
    integrations: v.optional(v.unknown()),
  }),
);

export interface Desktop {
  name: string;
  categories: string[];
  integrations: Item[];
}

/**
 * Upper-cases, checks, deduplicates and orders integration words; throws on an unknown word.
 * Anything but an array of strings counts as none (upstream).
 */
export function canonicalItems(raw: unknown): Item[] {
  if (!Array.isArray(raw) || !raw.every((item) => typeof item === "string")) return [];
  const found = new Set<Item>();
  for (const word of raw) {
    const item = ITEMS.find((known) => known === word.toUpperCase());
    if (!item) throw new Error(`unknown integration '${word}' (expected entry, mimetype, icon or none)`);
    found.add(item);
  }
  return ITEMS.filter((item) => found.has(item));
}

export function canonicalCategories(categories: string[]): string[] {
  return [...new Set(categories)].sort(compareBytes);
}

export function enabled(desktop: Desktop, item: Exclude<Item, "NONE">): boolean {
  return desktop.integrations.includes(item);
}

/** The stored form (reference §13.1 step 7): keys are sorted by the JSON printer. */
export function storedForm(desktop: Desktop): Record<string, unknown> {
  return { categories: desktop.categories, integrations: desktop.integrations, name: desktop.name };
}
