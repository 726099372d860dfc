// seccomp: the guest's system call filter (Flatpak's baseline, table.ts), generated as
// classic BPF for `bwrap --seccomp FD`, loaded last, over every guest. Under fim-root it also
// makes ownership changes succeed without effect (one uid is mapped: chown to another
// would fail and abort package managers).
import { writeFileSync } from "node:fs";
import { SANDBOX_STAGE } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { seccompArch, seccompProgram } from "./filter.ts";

export { seccompArch, seccompProgram, seccompTable, type SeccompOptions } from "./filter.ts";

const NAME = "seccomp";

export const seccompPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.security }, async (operations, launch) => {
      const fakeOwnership = launch.request.root;
      const program = `${runtime.paths.instance}/seccomp.bpf`;
      writeFileSync(program, seccompProgram({ arch: seccompArch(), allowUserNamespaces: false, fakeOwnership }));
      runtime.logger(NAME).debug(`Seccomp filter: ${program}${fakeOwnership ? " (ownership changes succeed without effect)" : ""}`);
      return [...operations, { op: "seccomp", program }];
    });
  },
};
