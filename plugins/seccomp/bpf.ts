// Classic BPF, the subset a seccomp filter uses: loads from `struct seccomp_data`, forward
// jumps, returns. Programs are written with labels; `assemble` resolves them into
// `struct sock_filter[]` bytes (8 bytes each: u16 code, u8 jt, u8 jf, u32 k, little-endian,
// as on both architectures we build for).

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const MAX_INSTRUCTIONS = 4096;

/** Instruction codes (linux/bpf_common.h). */
export const OP = {
  LD_W_ABS: 0x20, // BPF_LD | BPF_W | BPF_ABS: A = 32-bit word at offset k of seccomp_data
  JA: 0x05, // BPF_JMP | BPF_JA: pc += k
  JEQ: 0x15, // BPF_JMP | BPF_JEQ | BPF_K: pc += (A == k) ? jt : jf
  JGT: 0x25,
  JGE: 0x35,
  JSET: 0x45, // pc += (A & k) ? jt : jf
  RET: 0x06, // BPF_RET | BPF_K: return k
} as const;

/** Offsets in `struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }`. */
export const SECCOMP_DATA = {
  nr: 0,
  arch: 4,
  /** The low 32 bits of argument `i` (little-endian). */
  argLow: (i: number) => 16 + 8 * i,
  /** The high 32 bits of argument `i`. */
  argHigh: (i: number) => 16 + 8 * i + 4,
  size: 64,
} as const;

/** Return values (linux/seccomp.h); the low 16 bits carry the errno for ERRNO. */
export const RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000,
  ALLOW: 0x7fff0000,
} as const;

/** A place in a program; create one per jump target with `label()`. */
export interface Label {
  readonly name: string;
}

export function label(name: string): Label {
  return { name };
}

/** Where a conditional jump goes: a label, or the instruction that follows. */
export type Target = Label | "next";

export type Instruction =
  | { op: "load"; offset: number }
  | { op: "jump"; test: "eq" | "gt" | "ge" | "set"; k: number; then: Target; else: Target }
  | { op: "goto"; to: Label }
  | { op: "return"; k: number }
  | { op: "place"; label: Label };

/** Encoded instruction, as the kernel reads it. */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

const JUMP_CODES = { eq: OP.JEQ, gt: OP.JGT, ge: OP.JGE, set: OP.JSET } as const;

/**
 * Resolves labels into offsets. A conditional jump reaches at most 255 instructions ahead
 * (jt/jf are 8 bits); one that must go further becomes `j?? k, 0, 1; ja then; ja else`
 * (`ja` has 32 bits), repeated until every jump fits, which ends because a jump is widened
 * at most once.
 */
export function resolve(program: readonly Instruction[]): SockFilter[] {
  const defined = new Set<Label>();
  for (const instruction of program) {
    if (instruction.op !== "place") continue;
    if (defined.has(instruction.label)) throw new Error(`BPF label '${instruction.label.name}' is placed twice`);
    defined.add(instruction.label);
  }
  const widened = new Set<number>();
  for (;;) {
    // Positions: a label is where the next instruction will be.
    const at = new Map<Label, number>();
    const start: number[] = [];
    let pc = 0;
    program.forEach((instruction, index) => {
      start[index] = pc;
      if (instruction.op === "place") at.set(instruction.label, pc);
      else pc += instruction.op === "jump" && widened.has(index) ? 3 : 1;
    });
    const distance = (from: number, target: Target, after: number): number => {
      if (target === "next") return after - from - 1;
      const position = at.get(target);
      if (position === undefined) throw new Error(`BPF label '${target.name}' is never placed`);
      const offset = position - from - 1;
      if (offset < 0) throw new Error(`BPF jump to '${target.name}' goes backwards (classic BPF jumps only forward)`);
      return offset;
    };

    let grew = false;
    const out: SockFilter[] = [];
    program.forEach((instruction, index) => {
      const pc = start[index]!;
      switch (instruction.op) {
        case "place":
          return;
        case "load":
          if (instruction.offset % 4 !== 0 || instruction.offset < 0 || instruction.offset >= SECCOMP_DATA.size) {
            throw new Error(`BPF load offset ${instruction.offset} is not a 32-bit word of seccomp_data`);
          }
          out.push({ code: OP.LD_W_ABS, jt: 0, jf: 0, k: instruction.offset });
          return;
        case "return":
          out.push({ code: OP.RET, jt: 0, jf: 0, k: instruction.k >>> 0 });
          return;
        case "goto":
          out.push({ code: OP.JA, jt: 0, jf: 0, k: distance(pc, instruction.to, pc + 1) });
          return;
        case "jump": {
          const code = JUMP_CODES[instruction.test];
          if (widened.has(index)) {
            const after = pc + 3;
            out.push({ code, jt: 0, jf: 1, k: instruction.k >>> 0 });
            out.push({ code: OP.JA, jt: 0, jf: 0, k: distance(pc + 1, instruction.then, after) });
            out.push({ code: OP.JA, jt: 0, jf: 0, k: distance(pc + 2, instruction.else, after) });
            return;
          }
          const jt = distance(pc, instruction.then, pc + 1);
          const jf = distance(pc, instruction.else, pc + 1);
          if (jt > 255 || jf > 255) {
            widened.add(index);
            grew = true;
          }
          out.push({ code, jt, jf, k: instruction.k >>> 0 });
        }
      }
    });
    if (grew) continue;
    if (out.length === 0) throw new Error("BPF program is empty");
    if (out.length > MAX_INSTRUCTIONS) throw new Error(`BPF program has ${out.length} instructions; the kernel accepts at most ${MAX_INSTRUCTIONS}`);
    const last = out[out.length - 1]!;
    if (last.code !== OP.RET) throw new Error("BPF program does not end with a return");
    return out;
  }
}

/** The bytes of `struct sock_filter[]`, what `bwrap --seccomp FD` reads. */
export function encode(filters: readonly SockFilter[]): Buffer {
  const bytes = Buffer.alloc(filters.length * 8);
  filters.forEach((filter, i) => {
    bytes.writeUInt16LE(filter.code, i * 8);
    bytes.writeUInt8(filter.jt, i * 8 + 2);
    bytes.writeUInt8(filter.jf, i * 8 + 3);
    bytes.writeUInt32LE(filter.k, i * 8 + 4);
  });
  return bytes;
}

export function assemble(program: readonly Instruction[]): Buffer {
  return encode(resolve(program));
}
