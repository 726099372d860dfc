// table.ts turned into classic BPF for one host architecture, in the form
// `bwrap --seccomp FD` loads. filter.ts runs this at build time (a Bun macro) for every
// combination of options, so a launcher carries the programs and does not generate them.
import { assemble, label, type Instruction, RET, SECCOMP_DATA } from "./bpf.ts";
import { optionsKey, type SeccompOptions, unsupportedArch } from "./options.ts";
import { type Abi, ABIS, AUDIT_ARCH, ERRNO, NUMBERS, type Rule, RULES, type Verdict, X32_SYSCALL_BIT } from "./table.ts";

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

/** The filter's instructions, with labels. */
export function seccompInstructions(options: SeccompOptions): Instruction[] {
  const abis = ABIS[options.arch];
  if (abis === undefined) throw unsupportedArch(String(options.arch));
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

/** The BPF program bytes (`struct sock_filter[]`). */
export function generateSeccompProgram(options: SeccompOptions): Buffer {
  return assemble(seccompInstructions(options));
}

/** Every combination of options. */
export const ALL_OPTIONS: SeccompOptions[] = (Object.keys(ABIS) as SeccompOptions["arch"][]).flatMap((arch) =>
  [false, true].flatMap((allowUserNamespaces) => [false, true].map((fakeOwnership) => ({ arch, allowUserNamespaces, fakeOwnership }))),
);

/** The macro: every program, base64 by options key (a macro's result must be plain data). */
export function precomputedPrograms(): Record<string, string> {
  return Object.fromEntries(ALL_OPTIONS.map((options) => [optionsKey(options), generateSeccompProgram(options).toString("base64")]));
}
