// What a seccomp program is built for, and the architecture of the running process.
import { FimError } from "../../core/errors.ts";

export interface SeccompOptions {
  /** The host architecture the filter is for (`seccompArch()` names the running one). */
  arch: "x86_64" | "aarch64";
  /** false: clone/unshare creating namespaces, and setns, are refused (EPERM). */
  allowUserNamespaces: boolean;
  /** fim-root without subordinate ids: chown and set*id calls return 0 without effect. */
  fakeOwnership: boolean;
}

/** Names a combination of options, e.g. `x86_64+fakeowner`. */
export function optionsKey(options: SeccompOptions): string {
  return `${options.arch}${options.allowUserNamespaces ? "+userns" : ""}${options.fakeOwnership ? "+fakeowner" : ""}`;
}

export function unsupportedArch(arch: string): FimError {
  return new FimError(`No seccomp filter for the architecture '${arch}' (only x86_64 and aarch64)`);
}

/** The architecture of the running process, as the filter names it. */
export function seccompArch(arch: string = process.arch): SeccompOptions["arch"] {
  if (arch === "x64") return "x86_64";
  if (arch === "arm64") return "aarch64";
  throw unsupportedArch(arch);
}
