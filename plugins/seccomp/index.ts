// seccomp: the guest's system call filter (Flatpak's baseline, table.ts), generated as
// classic BPF for `bwrap --seccomp FD`. The sandbox asks `seccompProgram` for the bytes;
// this plugin taps no hook of its own.
import type { Plugin } from "../../core/plugin.ts";

export { seccompArch, seccompProgram, seccompTable, type SeccompOptions } from "./filter.ts";

export const seccompPlugin: Plugin = {
  name: "seccomp",
  apply() {},
};
