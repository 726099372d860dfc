// Host checks before a run, each with a message that says what to do (exit 125).
import { accessSync, constants, readFileSync } from "../../lib/fs.ts";
import { prepareDataDir } from "../../core/data-dir.ts";
import { FimError } from "../../core/errors.ts";
import type { Paths } from "../../core/paths.ts";

function sysctl(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    return undefined;
  }
}

const critical = (message: string) => new FimError(message, { level: "C" });

/** `read` gives a sysctl's value (a parameter so the checks can be exercised without root). */
export function checkHost(paths: Paths, read: (path: string) => string | undefined = sysctl): void {
  // /dev/fuse is not required: without it the layers are extracted (plugins/layer-extract).
  if (read("/proc/sys/user/max_user_namespaces") === "0") {
    throw critical("User namespaces are disabled (/proc/sys/user/max_user_namespaces is 0): the sandbox needs them. Enable them as root: sysctl -w user.max_user_namespaces=15000");
  }
  if (read("/proc/sys/kernel/unprivileged_userns_clone") === "0") {
    throw critical("Unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone is 0): the sandbox needs them. Enable them as root: sysctl -w kernel.unprivileged_userns_clone=1");
  }
  if (read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") === "1" && process.getuid?.() !== 0) {
    throw critical(
      "AppArmor restricts unprivileged user namespaces on this host (kernel.apparmor_restrict_unprivileged_userns is 1): allow them for this image with an AppArmor profile granting 'userns', or as root: sysctl -w kernel.apparmor_restrict_unprivileged_userns=0",
    );
  }
  prepareDataDir(paths);
}
