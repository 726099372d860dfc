// FlatImage prints and stores JSON as nlohmann's dump(2): 2-space indent, keys sorted
// byte-wise at every depth, so "10" comes before "2" (reference §2.5). JSON.stringify
// cannot do that (it puts integer-like keys first, numerically), hence this printer.
export function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function dump(value: unknown, indent: string): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const inner = `${indent}  `;
    return `[\n${value.map((item) => `${inner}${dump(item, inner)}`).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).filter((key) => (value as Record<string, unknown>)[key] !== undefined).sort(compareBytes);
    if (keys.length === 0) return "{}";
    const inner = `${indent}  `;
    const fields = keys.map((key) => `${inner}${JSON.stringify(key)}: ${dump((value as Record<string, unknown>)[key], inner)}`);
    return `{\n${fields.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value) ?? "null";
}

export function dumpJson(value: unknown): string {
  return dump(value, "");
}
