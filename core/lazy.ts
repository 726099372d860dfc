// Values made on first use (schemas, tables): a start pays only for what it uses.

/** `make()` once, when first asked for. */
export function lazy<T>(make: () => T): () => T {
  let made: { value: T } | undefined;
  return () => (made ??= { value: make() }).value;
}
