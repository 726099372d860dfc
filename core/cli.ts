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

/** Edits between two words, an adjacent transposition counting as one (`netwrok` → `network`: 1). */
export function editDistance(a: string, b: string): number {
  const rows = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, rows[i - 2]![j - 2]! + 1);
      rows[i]![j] = best;
    }
  }
  return rows[a.length]![b.length]!;
}

/**
 * The valid word a misspelt one most likely meant (case-insensitive), or undefined when none
 * is close: a few edits (more for longer words), or the only word it begins. On a tie, a word
 * that begins with it wins (`of` → `off`, not `on`), then the earlier one in `valid`.
 */
export function closestWord(word: string, valid: readonly string[]): string | undefined {
  const typed = word.toLowerCase();
  if (typed === "") return undefined;
  const allowed = typed.length <= 3 ? 1 : typed.length <= 7 ? 2 : 3;
  let best: { word: string; score: number } | undefined;
  for (const candidate of valid) {
    const lower = candidate.toLowerCase();
    const distance = editDistance(typed, lower);
    if (distance > allowed) continue;
    const score = distance * 2 + (lower.startsWith(typed) ? 0 : 1);
    if (!best || score < best.score) best = { word: candidate, score };
  }
  if (best) return best.word;
  const extending = valid.filter((candidate) => candidate.toLowerCase().startsWith(typed));
  return typed.length >= 2 && extending.length === 1 ? extending[0] : undefined;
}

/** `: did you mean 'x'?` for the closest valid word, or "" when none is close. */
export function didYouMean(word: string, valid: readonly string[]): string {
  const closest = closestWord(word, valid);
  return closest === undefined ? "" : `: did you mean '${closest}'?`;
}

/**
 * The message for a word that is none of `valid`: it names the word, then the valid word it
 * most likely meant or, when none is close, every valid word. `valid` is whatever the caller
 * accepts (a fixed list, or a registry's names), so a word added there is suggested too.
 *   Invalid permission 'netwrok': did you mean 'network'?
 *   Invalid perms operation 'foo' (one of: add, del, set, list, clear)
 */
export function unknownWord(message: string, word: string, valid: readonly string[]): string {
  return `${message} '${word}'${didYouMean(word, valid) || ` (one of: ${valid.join(", ")})`}`;
}

/**
 * Matches an enumerated word case-insensitively. Every enumeration also accepts the hidden
 * word `none` (upstream quirk kept: scripts may rely on it); it returns "NONE".
 * Unknown words throw `message` at C level after the debug-only enum line; the message
 * names the word and suggests the closest of `names` (upstream's text stays its prefix).
 */
export function parseWord<T extends string>(word: string, names: readonly T[], message: string): T | "NONE" {
  const upper = word.toUpperCase();
  if (upper === "NONE") return "NONE";
  const found = names.find((name) => name.toUpperCase() === upper);
  if (found !== undefined) return found;
  const error = new FimError(`Could not determine enum entry from '${upper}'`, { level: "D" });
  throw error.context(unknownWord(message, word, names), "C");
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

// Character tests without a regular expression: the first one a process runs pays for the
// engine's regexp machinery (-10 % of fim-perms list), and a start's plugins check names
// before anything else.
const isDigit = (code: number) => code >= 48 && code <= 57;

/** Digits only, as upstream checks indices and ids. */
export function isDigits(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (!isDigit(text.charCodeAt(i))) return false;
  return true;
}

/**
 * Whether `text` is a letter of one case followed by letters of that case, digits and `_`
 * (`^[a-z][a-z0-9_]*$`, or `^[A-Z][A-Z0-9_]*$` for "upper"): the names of permissions and
 * overlay types.
 */
export function isIdentifier(text: string, letters: "lower" | "upper"): boolean {
  const first = letters === "lower" ? 97 : 65;
  const isLetter = (code: number) => code >= first && code < first + 26;
  if (text.length === 0 || !isLetter(text.charCodeAt(0))) return false;
  for (let i = 1; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!isLetter(code) && !isDigit(code) && code !== 95) return false;
  }
  return true;
}

/** `on` / `off` (and upstream's hidden `none`, meaning off). */
export function parseSwitch(word: string, invalid: string): boolean {
  return parseWord(word, ["on", "off"] as const, invalid) === "on";
}
