// Who the guest runs as (reference §9.6): uid/gid/user/home/shell from the stored
// environment, the host, or root mode; the generated passwd entry and bashrc.
import { writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { SANDBOX_STAGE, type Identity } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { expandedEnv } from "../env/index.ts";

const NAME = "identity";

/** Leading digits, like C's strtoul (`5000x` → 5000); undefined when there are none. */
function leadingNumber(text: string | undefined): number | undefined {
  const digits = text === undefined ? undefined : /^\s*(\d+)/.exec(text)?.[1];
  return digits === undefined ? undefined : Number(digits);
}

export function resolveIdentity(runtime: Runtime, stored: Record<string, string>, rootRequested: boolean): Identity {
  const host = userInfo();
  const root = rootRequested || process.env.FIM_ROOT === "1" || leadingNumber(stored.UID) === 0;
  const uid = root ? 0 : leadingNumber(stored.UID) ?? host.uid;
  const gid = root ? 0 : leadingNumber(stored.GID) ?? host.gid;
  const user = uid === 0 ? "root" : stored.USER ?? process.env.USER ?? host.username;
  const home = root ? "/root" : stored.HOME ?? process.env.HOME ?? host.homedir;
  const shell = stored.SHELL ?? `${runtime.paths.bin}/bash`;
  return { uid, gid, user, home, shell };
}

export const identityPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.identity }, async (operations, launch) => {
      const stored = Object.fromEntries(await expandedEnv(runtime, log));
      const identity = resolveIdentity(runtime, stored, launch.request.root);
      launch.identity = identity;
      const { instance, bin } = runtime.paths;
      const passwd = `${identity.user}:x:${identity.uid}:${identity.gid}:${identity.user}:${identity.home}:${identity.shell}`;
      log.debug(`User: ${passwd}`);
      writeFileSync(`${instance}/passwd`, `${passwd}\n`);
      const ps1 = stored.PS1 ?? `[flatimage-${runtime.image.distribution.toLowerCase()}] \\W > `;
      writeFileSync(`${instance}/bashrc`, `export PS1="${ps1}"`);
      launch.env.BASHRC_FILE = `${instance}/bashrc`;
      // The embedded bash reads ~/.bashrc, not $BASHRC_FILE: point interactive shells at it.
      if (launch.request.program === "bash" || launch.request.program === `${bin}/bash`) {
        launch.request.args.unshift("--rcfile", `${instance}/bashrc`);
      }
      return [
        ...operations,
        ["--unshare-user"],
        ["--setenv", "USER", identity.user],
        ["--uid", String(identity.uid)],
        ["--gid", String(identity.gid)],
        ["--setenv", "HOME", identity.home],
        ["--setenv", "SHELL", identity.shell],
        // fim-root keeps the image's own /etc/passwd so that package scripts can add users.
        ...(launch.request.root ? [] : [["--bind-try", `${instance}/passwd`, "/etc/passwd"]]),
      ];
    });
  },
};
