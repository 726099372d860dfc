// FlatImage prints and stores JSON as nlohmann's dump(2): 2-space indent, keys sorted
// byte-wise at every depth (reference §2.5).
function sortKeysDeep(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeysDeep);
  if (value !== null && typeof value === "object") {
    const sorted: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort(compareBytes)) {
      sorted[key] = sortKeysDeep((value as Record<string, unknown>)[key]);
    }
    return sorted;
  }
  return value;
}

export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function dumpJson(value: unknown): string {
  return JSON.stringify(sortKeysDeep(value), null, 2);
}
