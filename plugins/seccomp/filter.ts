// The seccomp filter a guest runs under, as `bwrap --seccomp FD` reads it. The programs are
// generated from table.ts when the launcher is built (generate.ts, run as a Bun macro): a
// run only looks one up, where generating it in a cold process took ~1.5 ms.
import { precomputedPrograms } from "./generate.ts" with { type: "macro" };
import { optionsKey, type SeccompOptions, unsupportedArch } from "./options.ts";
import { type Abi, ABIS, NUMBERS, type Rule, RULES } from "./table.ts";

export { seccompArch, type SeccompOptions } from "./options.ts";

const PROGRAMS: Record<string, string> = precomputedPrograms();

/** The BPF program bytes (`struct sock_filter[]`, 8 bytes per instruction). */
export function seccompProgram(options: SeccompOptions): Buffer {
  const program = PROGRAMS[optionsKey(options)];
  if (program === undefined) throw unsupportedArch(String(options.arch));
  return Buffer.from(program, "base64");
}

/** The policy and the numbers the programs are built from (documentation, tests). */
export function seccompTable(): { rules: readonly Rule[]; numbers: Readonly<Record<Abi, Readonly<Record<string, number | null>>>>; abis: Readonly<typeof ABIS> } {
  return { rules: RULES, numbers: NUMBERS, abis: ABIS };
}
