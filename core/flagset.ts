// The add/del/set/list/clear grammar of a named bit-set stored in one slot. fim-perms and
// fim-unshare share it (reference §4.3, §4.13); each plugin brings its names and wording.
import { parseWord, rejectTrailing, splitStream } from "./cli.ts";
import { FimError, withContext } from "./errors.ts";
import { consoleLevel, logger, write } from "./log.ts";
import type { Action } from "./plugin.ts";
import { readSlot, updateSlot, type Slot } from "./reserved.ts";
import type { Runtime } from "./runtime.ts";

export interface FlagSetWording {
  missingOp: string;
  invalidOp: string;
  noneOp: string;
  invalidName: string;
  processFailed: string;
  /** E.g. `Invalid permission 'NONE'`. */
  noneName: string;
  allWithOthers: string;
  /** E.g. `The permissions in the reserved space are damaged`. */
  damaged: string;
  /** What the damaged slot counts as, e.g. `no permission is granted`. */
  ignored: string;
  failed: Record<"add" | "del" | "set" | "clear" | "list", string>;
}

export interface FlagSet {
  command: string;
  /** Names in bit order: names[i] is bit i ("" for a bit no name uses). */
  names: readonly string[];
  slot: Slot;
  wording: FlagSetWording;
}

const OPS = ["add", "del", "set", "list", "clear"] as const;

export function readFlags(runtime: Runtime, set: FlagSet): Set<string> {
  return decode(set, readSlot(runtime.image, set.slot), runtime);
}

function encode(set: FlagSet, names: Set<string>): Buffer {
  let bits = 0n;
  set.names.forEach((name, index) => {
    if (names.has(name)) bits |= 1n << BigInt(index);
  });
  const bytes = Buffer.alloc(set.slot.size);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Number((bits >> BigInt(8 * i)) & 0xffn);
  return bytes;
}

const warned = new Set<string>();

/**
 * The names whose bits are set. Bits that no name uses can only come from damage (a flipped
 * byte): then nothing is trusted, the set is empty (no permission is the safe default) and a
 * warning says so, once per process. Writing the slot again (`set`, `clear`) repairs it.
 */
function decode(set: FlagSet, bytes: Buffer, runtime: Runtime): Set<string> {
  let bits = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) bits = (bits << 8n) | BigInt(bytes[i]!);
  const known = set.names.reduce((mask, name, index) => (name === "" ? mask : mask | (1n << BigInt(index))), 0n);
  const unknown = bits & ~known;
  if (unknown !== 0n) {
    const key = `${runtime.image.path}\0${set.slot.name}`;
    if (!warned.has(key)) {
      warned.add(key);
      // A run shows only C lines, and a run that silently lost its permissions must say why.
      const level = consoleLevel() === "C" ? "C" : "W";
      logger(set.command).at(level, `${set.wording.damaged} (bits 0x${unknown.toString(16)} are set, which no name uses): ${set.wording.ignored}; '${set.command} set …' or '${set.command} clear' rewrites it`);
    }
    return new Set();
  }
  return new Set(set.names.filter((name, index) => name !== "" && (bits >> BigInt(index)) & 1n));
}

export function parseFlagSet(set: FlagSet, args: string[], runtime: Runtime): Action {
  const { wording } = set;
  const [opWord, ...rest] = args;
  if (opWord === undefined) throw new FimError(wording.missingOp, { level: "C" });
  const op = parseWord(opWord, OPS, wording.invalidOp);
  if (op === "NONE") throw new FimError(wording.noneOp, { level: "C" });

  if (op === "list" || op === "clear") {
    rejectTrailing(set.command, rest);
    if (op === "clear") {
      return () => withContext(wording.failed.clear, () => updateSlot(runtime.image, set.slot, () => encode(set, new Set())));
    }
    return () =>
      withContext(wording.failed.list, () => {
        const names = [...readFlags(runtime, set)].sort();
        write(1, names.map((name) => `${name}\n`).join(""));
      });
  }

  const [listText, ...trailing] = rest;
  if (listText === undefined) throw new FimError(`No arguments for '${op.toUpperCase()}' command`, { level: "C" });
  rejectTrailing(set.command, trailing);
  const words = splitStream(listText).map((word) => {
    try {
      return parseWord(word, [...set.names.filter((name) => name !== ""), "all"], wording.invalidName);
    } catch (error) {
      throw (error as FimError).context(wording.processFailed, "C");
    }
  });

  return () =>
    withContext(wording.failed[op], () => {
      if (words.includes("NONE")) throw new FimError(wording.noneName);
      if (words.includes("all") && words.length > 1) throw new FimError(wording.allWithOthers);
      // `all` means every name, for del too (upstream's del all enabled everything: fixed).
      const chosen = new Set(words.includes("all") ? set.names.filter((name) => name !== "") : words);
      updateSlot(runtime.image, set.slot, (current) => {
        if (op === "set") return encode(set, chosen);
        const stored = decode(set, current, runtime);
        for (const name of chosen) op === "add" ? stored.add(name) : stored.delete(name);
        return encode(set, stored);
      });
    });
}
