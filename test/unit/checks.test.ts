import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Paths } from "../../core/paths.ts";
import { checkHost } from "../../plugins/sandbox/checks.ts";

const dir = mkdtempSync(join(tmpdir(), "fim-checks-"));
const paths = { data: dir, upper: `${dir}/root`, tmp: `${dir}/tmp` } as Paths;
const with_ = (values: Record<string, string>) => (path: string) => values[path];

describe("host checks", () => {
  test("a usable host passes", () => {
    expect(() => checkHost(paths, with_({ "/proc/sys/user/max_user_namespaces": "15000" }))).not.toThrow();
  });

  test("each disabled user-namespace setting is named with the command that fixes it", () => {
    expect(() => checkHost(paths, with_({ "/proc/sys/user/max_user_namespaces": "0" }))).toThrow(
      "User namespaces are disabled (/proc/sys/user/max_user_namespaces is 0): the sandbox needs them. Enable them as root: sysctl -w user.max_user_namespaces=15000",
    );
    expect(() => checkHost(paths, with_({ "/proc/sys/kernel/unprivileged_userns_clone": "0" }))).toThrow(/kernel\.unprivileged_userns_clone is 0.*sysctl -w kernel\.unprivileged_userns_clone=1/);
    if (process.getuid!() !== 0) {
      expect(() => checkHost(paths, with_({ "/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1" }))).toThrow(/AppArmor restricts unprivileged user namespaces/);
    }
  });
});
