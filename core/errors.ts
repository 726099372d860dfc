// One error type for the whole runtime. It carries the FlatImage error chain
// (reference §2.3): the originating line first, then one context line per layer.
export type Level = "D" | "I" | "W" | "E" | "C";

export interface ChainLink {
  level: Level;
  message: string;
  tag: string;
}

export class FimError extends Error {
  readonly chain: ChainLink[];
  exitCode: number;

  constructor(message: string, options: { level?: Level; tag?: string; exitCode?: number } = {}) {
    super(message);
    this.name = "FimError";
    this.chain = [{ level: options.level ?? "E", message, tag: options.tag ?? "fim" }];
    this.exitCode = options.exitCode ?? 125;
  }

  /** Adds a context line on the way up, as each upstream layer does. */
  context(message: string, level: Level = "E", tag = "fim"): this {
    this.chain.push({ level, message, tag });
    return this;
  }
}

/** Throws a FimError whose originating line has the given level (C by default, like parse errors). */
export function fail(message: string, level: Level = "C", tag?: string): never {
  throw new FimError(message, { level, tag });
}

/** Runs `fn`; a FimError gets `message` appended to its chain, anything else is wrapped. */
export async function withContext<T>(message: string, fn: () => T | Promise<T>, level: Level = "E"): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw asFimError(error).context(message, level);
  }
}

export function asFimError(error: unknown): FimError {
  if (error instanceof FimError) return error;
  const text = error instanceof Error ? error.message : String(error);
  return new FimError(text.replace(/\n/g, " "), { level: "E" });
}
