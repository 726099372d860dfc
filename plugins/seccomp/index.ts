// seccomp: the guest's system call filter (Flatpak's baseline, table.ts), generated as
// classic BPF for `bwrap --seccomp FD`, loaded last, over every guest. Under fim-root it also
// makes ownership changes succeed without effect (one uid is mapped: chown to another
// would fail and abort package managers); so does every run whose guest is root.
import { writeFileSync } from "../../lib/fs.ts";
import { SANDBOX_STAGE } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { seccompArch, seccompProgram } from "./filter.ts";

export { seccompArch, seccompProgram, seccompTable, type SeccompOptions } from "./filter.ts";

const NAME = "seccomp";

export const seccompPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.security }, async (operations, launch) => {
      // A guest that is root with one mapped id: fim-root, or any run of the host's root
      // (0 is mapped to 0 then). Programs that are root chown freely (xterm gives its pty
      // to root:tty and exits when that fails).
      const fakeOwnership = launch.identity.uid === 0;
      const program = `${runtime.paths.instance}/seccomp.bpf`;
      writeFileSync(program, seccompProgram({ arch: seccompArch(), allowUserNamespaces: false, fakeOwnership }));
      const log = runtime.logger(NAME);
      log.debug(`Seccomp filter: ${program}${fakeOwnership ? " (ownership changes succeed without effect)" : ""}`);
      // Which ownership mode ran (README, "Packaging"): subordinate ids are not used yet.
      log.debug(
        fakeOwnership
          ? "Ownership: one uid mapped (the user, as root): chown and set*id calls succeed without effect, files stay the user's; a commit stores them as root"
          : "Ownership: one uid mapped (the user): files are the user's; chown to another owner fails",
      );
      return [...operations, { op: "seccomp", program }];
    });
  },
};
