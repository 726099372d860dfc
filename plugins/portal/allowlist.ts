// Which host programs guests may run through the portal, stored in the reserved space
// (SLOTS.portal, 4 KiB): NUL-terminated JSON `{"all": false, "programs": ["xdg-open"]}`.
// Empty by default: the portal runs nothing until the image's owner allows it. The daemon
// enforces the list (the guest controls the client); this module only stores it.
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";
import { FimError } from "../../core/errors.ts";
import type { Image } from "../../core/image.ts";
import { readJson, SLOTS, updateJson, writeJson } from "../../core/reserved.ts";

export interface PortalPolicy {
  /** Every program, with the caller's environment (upstream's behaviour). */
  all: boolean;
  /** Names (looked up in the host's PATH) or absolute paths, in the order they were allowed. */
  programs: string[];
}

export const CLOSED: PortalPolicy = { all: false, programs: [] };

export const TOO_LARGE = `Not enough space to fit the portal's list of programs (${SLOTS.portal.size} bytes)`;

/** Why `word` cannot name a host program, or undefined. The same rules as the daemon's. */
export function programProblem(word: string): string | undefined {
  if (word === "") return "it is empty";
  if (/[\u0000-\u001f\u007f]/.test(word)) return "it contains control characters";
  if (word.includes(",")) return "it contains a comma";
  if (!word.includes("/")) return word === "." || word === ".." ? "it is not a program name" : undefined;
  if (!word.startsWith("/")) return "a path must be absolute (or give the name alone: it is looked up in the host's PATH)";
  if (word.split("/").slice(1).some((part) => part === "" || part === "." || part === "..")) return "a path must not contain '.', '..' or empty components";
  return undefined;
}

const PolicySchema = lazy(() => {
  const Program = v.pipe(
    v.string(),
    v.check((word) => programProblem(word) === undefined, "not a program name or absolute path"),
  );
  return v.object({ all: v.optional(v.boolean(), false), programs: v.optional(v.array(Program), []) });
});

/** The stored policy; an empty slot is the closed default. Corrupt data is an error. */
export function readPolicy(image: Image): PortalPolicy {
  return readJson(image, SLOTS.portal, PolicySchema()) ?? { ...CLOSED };
}

/** Read-modify-write under the image lock. */
export function updatePolicy(image: Image, change: (policy: PortalPolicy) => PortalPolicy): void {
  updateJson(image, SLOTS.portal, PolicySchema(), (stored) => change(stored ?? { ...CLOSED }), TOO_LARGE);
}

/** Back to the default; also replaces data that no longer parses. */
export function clearPolicy(image: Image): void {
  writeJson(image, SLOTS.portal, CLOSED, TOO_LARGE);
}

/** Checks each word; the error names the first bad one. */
export function checkPrograms(words: string[]): string[] {
  for (const word of words) {
    const problem = programProblem(word);
    if (problem) throw new FimError(`Invalid program '${word}' for the portal: ${problem}`, { level: "C" });
  }
  return words;
}
