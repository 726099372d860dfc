// The seccomp program for a guest: table.ts turned into classic BPF for one host
// architecture, in the form `bwrap --seccomp FD` loads.
import { FimError } from "../../core/errors.ts";
import { assemble, label, type Instruction, RET, SECCOMP_DATA } from "./bpf.ts";
import { type Abi, AUDIT_ARCH, ERRNO, NUMBERS, type Rule, RULES, type Verdict, X32_SYSCALL_BIT } from "./table.ts";

export interface SeccompOptions {
  /** The host architecture the filter is for (`seccompArch()` gives the running one). */
  arch: "x86_64" | "aarch64";
  /** false: clone/unshare creating namespaces and setns are refused (EPERM). */
  allowUserNamespaces: boolean;
  /** fim-root without subordinate ids: the chown family returns 0 without effect. */
  fakeOwnership: boolean;
}

/**
 * The ABIs a filter accepts, native first. On x86_64 the 32-bit ABI gets the same policy
 * with its own numbers (32-bit programs such as Wine's keep working); x32 and, on aarch64,
 * 32-bit ARM are refused (see README.md).
 */
const ABIS: Record<SeccompOptions["arch"], Abi[]> = { x86_64: ["x86_64", "i386"], aarch64: ["aarch64"] };

/** The seccomp filter's architecture for the running process. */
export function seccompArch(arch: string = process.arch): SeccompOptions["arch"] {
  if (arch === "x64") return "x86_64";
  if (arch === "arm64") return "aarch64";
  throw new FimError(`No seccomp filter for the architecture '${arch}' (only x86_64 and aarch64)`);
}

/** The rules that apply under these options. */
export function activeRules(options: SeccompOptions): Rule[] {
  return RULES.filter((rule) =>
    Object.entries(rule.only ?? {}).every(([option, value]) => options[option as keyof typeof rule.only & keyof SeccompOptions] === value),
  );
}

const verdict = (name: Verdict) => RET.ERRNO | ERRNO[name];

/** The rules for one ABI: each rule a block entered on its syscall numbers, skipped otherwise. */
function abiBlock(abi: Abi, rules: Rule[]): Instruction[] {
  const code: Instruction[] = [{ op: "load", offset: SECCOMP_DATA.nr }];
  // x32 calls share the x86_64 arch value; their numbers have a bit set. No x32 here.
  const x32 = abi === "x86_64" ? label("x32") : undefined;
  if (x32) code.push({ op: "jump", test: "ge", k: X32_SYSCALL_BIT, then: x32, else: "next" });
  rules.forEach((rule, index) => {
    const numbers = rule.syscalls.map((name) => NUMBERS[abi][name]).filter((n): n is number => n !== null && n !== undefined);
    if (numbers.length === 0) return;
    const body = label(`${abi}.${index}.body`);
    const skip = label(`${abi}.${index}.skip`);
    numbers.forEach((nr, i) => {
      const last = i === numbers.length - 1;
      code.push({ op: "jump", test: "eq", k: nr, then: last ? "next" : body, else: last ? skip : "next" });
    });
    code.push({ op: "place", label: body });
    const refuse = verdict(rule.verdict);
    const test = rule.test;
    if (test === undefined) {
      code.push({ op: "return", k: refuse });
    } else {
      const hit = label(`${abi}.${index}.hit`);
      const miss = label(`${abi}.${index}.miss`);
      code.push({ op: "load", offset: SECCOMP_DATA.argLow(test.arg) });
      if ("anyBit" in test) {
        code.push({ op: "jump", test: "set", k: test.anyBit, then: hit, else: miss });
      } else {
        // `in`: a listed value refuses; `notIn`: a listed value allows.
        const onListed = "in" in test ? hit : miss;
        const values = "in" in test ? test.in : test.notIn;
        for (const value of values) code.push({ op: "jump", test: "eq", k: value, then: onListed, else: "next" });
        code.push({ op: "goto", to: "in" in test ? miss : hit });
      }
      code.push({ op: "place", label: miss }, { op: "return", k: RET.ALLOW });
      code.push({ op: "place", label: hit }, { op: "return", k: refuse });
    }
    code.push({ op: "place", label: skip });
  });
  code.push({ op: "return", k: RET.ALLOW });
  if (x32) code.push({ op: "place", label: x32 }, { op: "return", k: verdict("ENOSYS") });
  return code;
}

/** The filter's instructions with labels (what `seccompProgram` assembles). */
export function seccompInstructions(options: SeccompOptions): Instruction[] {
  const abis = ABIS[options.arch];
  if (abis === undefined) throw new FimError(`No seccomp filter for the architecture '${String(options.arch)}' (only x86_64 and aarch64)`);
  const rules = activeRules(options);
  const entries = abis.map((abi) => label(abi));
  const code: Instruction[] = [{ op: "load", offset: SECCOMP_DATA.arch }];
  abis.forEach((abi, i) => code.push({ op: "jump", test: "eq", k: AUDIT_ARCH[abi], then: entries[i]!, else: "next" }));
  // Any other ABI (x86's x32 shares x86_64's value and is refused by number): killed, since
  // its numbers mean other calls and no rule of ours would apply.
  code.push({ op: "return", k: RET.KILL_PROCESS });
  abis.forEach((abi, i) => code.push({ op: "place", label: entries[i]! }, ...abiBlock(abi, rules)));
  return code;
}

/** The BPF program bytes (`struct sock_filter[]`), for `bwrap --seccomp FD`. */
export function seccompProgram(options: SeccompOptions): Buffer {
  return assemble(seccompInstructions(options));
}

/** The policy and the numbers it is built from (documentation, tests). */
export function seccompTable(): { rules: readonly Rule[]; numbers: Readonly<Record<Abi, Readonly<Record<string, number | null>>>>; abis: Readonly<typeof ABIS> } {
  return { rules: RULES, numbers: NUMBERS, abis: ABIS };
}
