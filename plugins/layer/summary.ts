// One line about what a layer contains (fim-layer list --long): how many entries and bytes,
// how many deletions, the packages it installs or removes (when the bundle says where its
// package database names them), and where most of its bytes are.
import type { LayerEntry } from "../../core/plugin.ts";

const SHOWN_PACKAGES = 6;
const SHOWN_PATHS = 3;
const PATH_DEPTH = 3;

export function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

const text = (path: string) => Buffer.from(path, "latin1").toString();

function listed(names: string[]): string {
  const sorted = [...new Set(names)].sort();
  const more = sorted.length - SHOWN_PACKAGES;
  return sorted.slice(0, SHOWN_PACKAGES).join(", ") + (more > 0 ? ` (+${more})` : "");
}

/** `entries` as walked by the layer's format; `packageEntry` from the bundle (its first group is the package name). */
export function summarize(entries: LayerEntry[], packageEntry?: RegExp): string {
  let bytes = 0;
  let deleted = 0;
  const installed: string[] = [];
  const removed: string[] = [];
  const where = new Map<string, number>();
  for (const entry of entries) {
    const whiteout = entry.type === "char" && entry.rdev === 0;
    if (whiteout) deleted++;
    const name = packageEntry?.exec(text(entry.path))?.[1];
    if (name) (whiteout ? removed : installed).push(name);
    if (entry.type !== "file" || entry.size === 0) continue;
    bytes += entry.size;
    const key = entry.path.split("/").slice(0, PATH_DEPTH).join("/");
    where.set(key, (where.get(key) ?? 0) + entry.size);
  }
  const parts = [`${entries.length} entries, ${human(bytes)} unpacked${deleted ? `, ${deleted} deleted` : ""}`];
  if (installed.length) parts.push(`packages: ${listed(installed)}`);
  if (removed.length) parts.push(`removes packages: ${listed(removed)}`);
  const top = [...where].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, SHOWN_PATHS);
  if (top.length) parts.push(top.map(([path, size]) => `${text(path)} ${human(size)}`).join(", ") + (where.size > SHOWN_PATHS ? ", …" : ""));
  return parts.join("; ");
}
