// The seccomp filter: the assembler, the table, and the program's verdicts, run through a
// small classic-BPF interpreter (so the aarch64 filter is tested too, on any host).
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { assemble, type Instruction, label, MAX_INSTRUCTIONS, OP, resolve, RET, type SockFilter } from "../../plugins/seccomp/bpf.ts";
import { seccompArch, seccompProgram, type SeccompOptions, seccompTable } from "../../plugins/seccomp/filter.ts";
import { activeRules, ALL_OPTIONS, generateSeccompProgram } from "../../plugins/seccomp/generate.ts";
import { type Abi, AUDIT_ARCH, ERRNO, NUMBERS, RULES, type Verdict } from "../../plugins/seccomp/table.ts";

/** Runs a program on one `struct seccomp_data`, as the kernel would; returns what it returns. */
function run(program: Buffer, data: { nr: number; arch: number; args?: (number | bigint)[] }): number {
  const seccompData = Buffer.alloc(64);
  seccompData.writeInt32LE(data.nr, 0);
  seccompData.writeUInt32LE(data.arch, 4);
  (data.args ?? []).forEach((arg, i) => seccompData.writeBigUInt64LE(BigInt.asUintN(64, BigInt(arg)), 16 + 8 * i));
  const count = program.length / 8;
  let a = 0;
  for (let pc = 0; ; pc++) {
    if (pc >= count) throw new Error(`ran off the end at ${pc}`);
    const code = program.readUInt16LE(pc * 8);
    const jt = program.readUInt8(pc * 8 + 2);
    const jf = program.readUInt8(pc * 8 + 3);
    const k = program.readUInt32LE(pc * 8 + 4);
    const branch = (taken: boolean) => (pc += taken ? jt : jf);
    switch (code) {
      case OP.LD_W_ABS:
        if (k % 4 !== 0 || k > 60) throw new Error(`bad load offset ${k}`);
        a = seccompData.readUInt32LE(k);
        break;
      case OP.JA:
        pc += k;
        break;
      case OP.JEQ:
        branch(a === k);
        break;
      case OP.JGT:
        branch(a > k);
        break;
      case OP.JGE:
        branch(a >= k);
        break;
      case OP.JSET:
        branch((a & k) !== 0);
        break;
      case OP.RET:
        return k;
      default:
        throw new Error(`unknown instruction 0x${code.toString(16)} at ${pc}`);
    }
  }
}

const errno = (name: Verdict) => (RET.ERRNO | ERRNO[name]) >>> 0;
const ALLOW = RET.ALLOW;
const KILL = RET.KILL_PROCESS;
const nr = (abi: Abi, name: string) => {
  const number = NUMBERS[abi][name];
  if (number === null || number === undefined) throw new Error(`${name} has no number on ${abi}`);
  return number;
};
const resolveable = (abi: Abi, names: string[]) => names.filter((name) => NUMBERS[abi][name] !== null);
const combinations: SeccompOptions[] = ALL_OPTIONS;
const ABIS_OF = { x86_64: ["x86_64", "i386"], aarch64: ["aarch64"] } as const;

describe("assembler", () => {
  test("encodes struct sock_filter: u16 code, u8 jt, u8 jf, u32 k, little-endian", () => {
    const kill = label("kill");
    const program = assemble([
      { op: "load", offset: 4 },
      { op: "jump", test: "eq", k: 0xc000003e, then: "next", else: kill },
      { op: "return", k: RET.ALLOW },
      { op: "place", label: kill },
      { op: "return", k: RET.KILL_PROCESS },
    ]);
    expect(program.toString("hex")).toBe(["2000000004000000", "150000013e0000c0", "060000000000ff7f", "0600000000000080"].join(""));
  });

  test("a conditional jump beyond 255 instructions goes through a 32-bit `ja`", () => {
    const far = label("far");
    const near = label("near");
    const filler: Instruction[] = Array.from({ length: 300 }, () => ({ op: "return", k: errno("EPERM") }));
    const program: Instruction[] = [
      { op: "load", offset: 0 },
      { op: "jump", test: "eq", k: 7, then: far, else: near },
      { op: "place", label: near },
      { op: "jump", test: "eq", k: 8, then: far, else: "next" },
      { op: "return", k: RET.ALLOW },
      ...filler,
      { op: "place", label: far },
      { op: "return", k: errno("ENOSYS") },
    ];
    const filters = resolve(program);
    expect(filters.every((f) => f.jt <= 255 && f.jf <= 255)).toBe(true);
    expect(filters.filter((f) => f.code === OP.JA)).toHaveLength(4); // both jumps widened
    const bytes = assemble(program);
    expect(run(bytes, { nr: 7, arch: 0 })).toBe(errno("ENOSYS"));
    expect(run(bytes, { nr: 8, arch: 0 })).toBe(errno("ENOSYS"));
    expect(run(bytes, { nr: 9, arch: 0 })).toBe(ALLOW);
  });

  test("a jump of exactly 255 stays short", () => {
    const end = label("end");
    const program: Instruction[] = [
      { op: "load", offset: 0 },
      { op: "jump", test: "eq", k: 1, then: end, else: "next" },
      ...Array.from({ length: 255 }, (): Instruction => ({ op: "return", k: RET.ALLOW })),
      { op: "place", label: end },
      { op: "return", k: RET.KILL_PROCESS },
    ];
    const filters = resolve(program);
    expect(filters[1]).toEqual({ code: OP.JEQ, jt: 255, jf: 0, k: 1 } satisfies SockFilter);
    expect(filters).toHaveLength(258);
  });

  test("refuses what the kernel would refuse or what cannot be resolved", () => {
    const x = label("x");
    const ret: Instruction = { op: "return", k: RET.ALLOW };
    expect(() => resolve([{ op: "place", label: x }, { op: "place", label: x }, ret])).toThrow("BPF label 'x' is placed twice");
    expect(() => resolve([{ op: "goto", to: x }, ret])).toThrow("BPF label 'x' is never placed");
    expect(() => resolve([{ op: "place", label: x }, { op: "goto", to: x }, ret])).toThrow("goes backwards");
    expect(() => resolve([{ op: "load", offset: 2 }, ret])).toThrow("not a 32-bit word");
    expect(() => resolve([{ op: "load", offset: 64 }, ret])).toThrow("not a 32-bit word");
    expect(() => resolve([{ op: "load", offset: 0 }])).toThrow("does not end with a return");
    expect(() => resolve([])).toThrow("empty");
    expect(() => resolve(Array.from({ length: MAX_INSTRUCTIONS + 1 }, () => ret))).toThrow("at most 4096");
    expect(resolve(Array.from({ length: MAX_INSTRUCTIONS }, () => ret))).toHaveLength(MAX_INSTRUCTIONS);
  });
});

describe("table", () => {
  test("every ABI lists the same names, exactly those the rules use", () => {
    const used = RULES.flatMap((rule) => rule.syscalls).sort();
    for (const abi of ["x86_64", "i386", "aarch64"] as const) expect(Object.keys(NUMBERS[abi]).sort()).toEqual(used);
  });

  test("no syscall is in two rules, no number is given to two names", () => {
    const names = RULES.flatMap((rule) => rule.syscalls);
    expect(new Set(names).size).toBe(names.length);
    for (const abi of ["x86_64", "i386", "aarch64"] as const) {
      const numbers = Object.values(NUMBERS[abi]).filter((n) => n !== null);
      expect(new Set(numbers).size).toBe(numbers.length);
    }
  });

  test("every name is a call on at least one ABI (a rule is skipped where its calls do not exist)", () => {
    for (const name of Object.keys(NUMBERS.x86_64)) expect([name, [NUMBERS.x86_64[name], NUMBERS.i386[name], NUMBERS.aarch64[name]].some((n) => n !== null)]).toEqual([name, true]);
    expect(NUMBERS.aarch64.modify_ldt).toBeNull();
    expect(resolveable("aarch64", ["chown", "fchown", "lchown", "fchownat"])).toEqual(["fchown", "fchownat"]);
  });

  test("every rule says why", () => {
    for (const rule of RULES) expect(rule.why.length).toBeGreaterThan(20);
  });

  // The numbers were written from the kernel's tables; the host's kernel headers must agree.
  const headers: [Abi, string][] = [
    ["x86_64", "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"],
    ["i386", "/usr/include/x86_64-linux-gnu/asm/unistd_32.h"],
    ["aarch64", "/usr/include/asm-generic/unistd.h"],
  ];
  for (const [abi, file] of headers) {
    test(`${abi} numbers agree with ${file} (a name it lacks is null here)`, () => {
      if (!existsSync(file)) throw new Error(`${file} is missing: install the kernel headers (apt-get install linux-libc-dev)`);
      const defined = new Map<string, number>();
      for (const match of readFileSync(file, "utf8").matchAll(/^#define __NR_(\w+)\s+(\d+)\s*$/gm)) defined.set(match[1]!, Number(match[2]));
      const mismatches = Object.entries(NUMBERS[abi]).filter(([name, number]) => (defined.get(name) ?? null) !== number);
      expect(mismatches).toEqual([]);
    });
  }

  test("seccompTable exposes the rules and numbers the program is built from", () => {
    const table = seccompTable();
    expect(table.rules).toBe(RULES);
    expect(table.numbers).toBe(NUMBERS);
    expect(table.abis.x86_64).toEqual(["x86_64", "i386"]);
  });
});

describe("program", () => {
  test("fits the kernel's limit, ends in a return, and each option changes it", () => {
    const programs = new Set<string>();
    for (const options of combinations) {
      const program = seccompProgram(options);
      expect(program.length % 8).toBe(0);
      expect(program.length / 8).toBeLessThanOrEqual(MAX_INSTRUCTIONS);
      expect(program.readUInt16LE(program.length - 8)).toBe(OP.RET);
      programs.add(program.toString("hex"));
    }
    expect(programs.size).toBe(combinations.length);
    expect(combinations).toHaveLength(8);
  });

  test("the programs built into the launcher (a macro) are the ones the table generates now", () => {
    for (const options of combinations) expect([options, seccompProgram(options).toString("hex")]).toEqual([options, generateSeccompProgram(options).toString("hex")]);
  });

  test("the host architecture is named from process.arch; others are refused clearly", () => {
    expect(seccompArch("x64")).toBe("x86_64");
    expect(seccompArch("arm64")).toBe("aarch64");
    expect(() => seccompArch("riscv64")).toThrow("No seccomp filter for the architecture 'riscv64' (only x86_64 and aarch64)");
    expect(() => seccompProgram({ arch: "mips" as "x86_64", allowUserNamespaces: false, fakeOwnership: false })).toThrow("architecture 'mips'");
  });

  test("other architectures are killed, x32 calls get ENOSYS", () => {
    const x86 = seccompProgram({ arch: "x86_64", allowUserNamespaces: false, fakeOwnership: false });
    const arm = seccompProgram({ arch: "aarch64", allowUserNamespaces: false, fakeOwnership: false });
    expect(run(x86, { nr: 39, arch: AUDIT_ARCH.aarch64 })).toBe(KILL);
    expect(run(x86, { nr: 39, arch: 0x40000028 /* ARM */ })).toBe(KILL);
    expect(run(arm, { nr: 172, arch: AUDIT_ARCH.x86_64 })).toBe(KILL);
    expect(run(arm, { nr: 172, arch: 0x40000028 })).toBe(KILL);
    expect(run(arm, { nr: 172, arch: AUDIT_ARCH.i386 })).toBe(KILL);
    expect(run(x86, { nr: 0x40000000 | 39, arch: AUDIT_ARCH.x86_64 })).toBe(errno("ENOSYS"));
    expect(run(x86, { nr: 0x40000000 | 514 /* x32 ioctl */, arch: AUDIT_ARCH.x86_64, args: [0, 0x5412] })).toBe(errno("ENOSYS"));
    expect(run(x86, { nr: -1, arch: AUDIT_ARCH.x86_64 })).toBe(errno("ENOSYS"));
  });

  for (const options of combinations) {
    const program = seccompProgram(options);
    const flags = `allowUserNamespaces=${options.allowUserNamespaces} fakeOwnership=${options.fakeOwnership}`;
    for (const abi of ABIS_OF[options.arch]) {
      const call = (name: string, ...args: (number | bigint)[]) => run(program, { nr: nr(abi, name), arch: AUDIT_ARCH[abi], args });

      test(`${abi} (${options.arch} filter, ${flags}): every number not in an active rule is allowed, with any arguments`, () => {
        const ruled = new Set(activeRules(options).flatMap((rule) => rule.syscalls.map((name) => NUMBERS[abi][name])));
        for (let number = 0; number < 1024; number++) {
          if (ruled.has(number)) continue;
          expect(run(program, { nr: number, arch: AUDIT_ARCH[abi], args: [0x5412, 0x5412, -1, -1, -1, -1] })).toBe(ALLOW);
        }
      });

      test(`${abi} (${options.arch} filter, ${flags}): each rule's verdict`, () => {
        for (const rule of activeRules(options).filter((r) => r.test === undefined)) {
          for (const name of rule.syscalls) if (NUMBERS[abi][name] !== null) expect([name, call(name, 0, 0)]).toEqual([name, errno(rule.verdict)]);
        }
        // ioctl: TIOCSTI and TIOCLINUX on their low 32 bits only, as the kernel reads them.
        expect(call("ioctl", 0, 0x5412)).toBe(errno("EPERM"));
        expect(call("ioctl", 0, 0x1_0000_5412n)).toBe(errno("EPERM"));
        expect(call("ioctl", 0, 0xffffffff_00005412n)).toBe(errno("EPERM"));
        expect(call("ioctl", 0, 0x541c)).toBe(errno("EPERM"));
        expect(call("ioctl", 0, 0x5401 /* TCGETS */)).toBe(ALLOW);
        expect(call("ioctl", 0x5412, 0x5413 /* TIOCGWINSZ */)).toBe(ALLOW);
        // socket: local, IP, netlink.
        for (const family of [0, 1, 2, 10, 16]) expect(call("socket", family, 1, 0)).toBe(ALLOW);
        for (const family of [3, 4, 9, 15, 17, 29, 31, 38, 40, 45, 46, 255, -1]) expect([family, call("socket", family, 1, 0)]).toEqual([family, errno("EAFNOSUPPORT")]);
        // personality: Linux, Linux32, the query.
        for (const persona of [0, 8, 0xffffffff]) expect(call("personality", persona)).toBe(ALLOW);
        for (const persona of [0x0040000 /* ADDR_NO_RANDOMIZE */, 0x0400000 /* READ_IMPLIES_EXEC */, 0x0008 | 0x0040000, 1, 0x10]) expect(call("personality", persona)).toBe(errno("EPERM"));
        expect(call("clone3", 0, 88)).toBe(errno("ENOSYS"));
        expect(call("keyctl", 0, -3)).toBe(errno("EPERM"));
      });

      test(`${abi} (${options.arch} filter, ${flags}): namespaces ${options.allowUserNamespaces ? "allowed" : "refused"}`, () => {
        const thread = 0x3d0f00; // what pthread_create passes
        const fork = 0x01200011; // CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD
        expect(call("clone", thread)).toBe(ALLOW);
        expect(call("clone", fork)).toBe(ALLOW);
        expect(call("unshare", 0x400 /* CLONE_FILES */)).toBe(ALLOW);
        expect(call("unshare", 0x200 /* CLONE_FS */)).toBe(ALLOW);
        const refused = options.allowUserNamespaces ? ALLOW : errno("EPERM");
        for (const flag of [0x10000000, 0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x20000000, 0x40000000]) {
          expect(call("clone", fork | flag)).toBe(refused);
          expect(call("unshare", flag)).toBe(refused);
        }
        expect(call("clone", 0x1_0000_0000n | BigInt(0x10000000 | 17))).toBe(refused);
        expect(call("unshare", 0x80 /* CLONE_NEWTIME */)).toBe(refused);
        expect(call("setns", 3, 0)).toBe(refused);
        // A nested sandbox mounts in its own namespace; the new mount API stays closed.
        for (const name of ["mount", "umount", "umount2", "pivot_root", "chroot"]) if (NUMBERS[abi][name] !== null) expect([name, call(name)]).toEqual([name, refused]);
        for (const name of ["fsopen", "fsconfig", "open_tree", "move_mount"]) expect([name, call(name)]).toEqual([name, errno("ENOSYS")]);
      });

      test(`${abi} (${options.arch} filter, ${flags}): ownership and identity changes ${options.fakeOwnership ? "succeed without effect" : "go to the kernel"}`, () => {
        const names = abi === "aarch64" ? ["fchown", "fchownat"] : abi === "x86_64" ? ["chown", "fchown", "lchown", "fchownat"] : ["chown", "fchown", "lchown", "fchownat", "chown32", "fchown32", "lchown32"];
        const switches = ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid", "setfsgid", "setgroups"];
        const switches32 = abi === "i386" ? switches.map((name) => `${name}32`) : [];
        for (const name of [...names, ...switches, ...switches32]) expect([name, call(name, 0, 1000, 1000)]).toEqual([name, options.fakeOwnership ? errno("SUCCESS") : ALLOW]);
        expect(errno("SUCCESS")).toBe(RET.ERRNO);
      });
    }
  }

  test("the 32-bit x86 ABI gets the same policy with its own numbers", () => {
    const program = seccompProgram({ arch: "x86_64", allowUserNamespaces: false, fakeOwnership: false });
    const i386 = AUDIT_ARCH.i386;
    expect(run(program, { nr: 288 /* keyctl */, arch: i386 })).toBe(errno("EPERM"));
    expect(run(program, { nr: 250 /* keyctl on x86_64, fadvise64 on i386 */, arch: i386 })).toBe(ALLOW);
    expect(run(program, { nr: 250, arch: AUDIT_ARCH.x86_64 })).toBe(errno("EPERM"));
    expect(run(program, { nr: 54 /* ioctl */, arch: i386, args: [0, 0x5412] })).toBe(errno("EPERM"));
    expect(run(program, { nr: 16 /* ioctl on x86_64, lchown on i386 */, arch: i386, args: [0, 0x5412] })).toBe(ALLOW);
    expect(run(program, { nr: 20 /* getpid */, arch: i386 })).toBe(ALLOW);
  });
});
