// Argument helpers shared by the fim-* commands (reference §3). They know the grammar
// conventions, not any command.
import { FimError } from "./errors.ts";

/** Renders leftover arguments like upstream: `['a','b',]`. */
export function renderArgs(args: readonly string[]): string {
  return `[${args.map((arg) => `'${arg}',`).join("")}]`;
}

export function rejectTrailing(command: string, args: readonly string[]): void {
  if (args.length > 0) throw new FimError(`Trailing arguments for ${command}: ${renderArgs(args)}`, { level: "C" });
}

/**
 * Matches an enumerated word case-insensitively. Every enumeration also accepts the hidden
 * word `none` (upstream quirk kept: scripts may rely on it); it returns "NONE".
 * Unknown words throw `message` at C level after the debug-only enum line.
 */
export function parseWord<T extends string>(word: string, names: readonly T[], message: string): T | "NONE" {
  const upper = word.toUpperCase();
  if (upper === "NONE") return "NONE";
  const found = names.find((name) => name.toUpperCase() === upper);
  if (found !== undefined) return found;
  const error = new FimError(`Could not determine enum entry from '${upper}'`, { level: "D" });
  throw error.context(message, "C");
}

/** "a,,b" → [a,"",b]; a trailing comma adds nothing; "" → [] (permissions, unshare). */
export function splitStream(text: string): string[] {
  if (text === "") return [];
  const items = text.split(",");
  if (items[items.length - 1] === "") items.pop();
  return items;
}

/** "a,,b" → [a,"",b]; "a," → [a,""]; "" → [] (desktop items, recipe names). */
export function splitRange(text: string): string[] {
  return text === "" ? [] : text.split(",");
}

/** Digits only, as upstream checks indices and ids. */
export function isDigits(text: string): boolean {
  return /^[0-9]+$/.test(text);
}

/** `on` / `off` (and upstream's hidden `none`, meaning off). */
export function parseSwitch(word: string, invalid: string): boolean {
  return parseWord(word, ["on", "off"] as const, invalid) === "on";
}
