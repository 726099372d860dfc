// Who the guest runs as (reference §9.6): uid/gid/user/home/shell from the stored
// environment, the host, or root mode; the generated passwd entry and bashrc.
import { mkdirSync, writeFileSync } from "../../lib/fs.ts";
import { userInfo } from "../../lib/node.ts";
import { SANDBOX_STAGE, type Identity } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";

const NAME = "identity";

/** Leading digits, like C's strtoul (`5000x` → 5000); undefined when there are none. */
function leadingNumber(text: string | undefined): number | undefined {
  const digits = text === undefined ? undefined : /^\s*(\d+)/.exec(text)?.[1];
  return digits === undefined ? undefined : Number(digits);
}

/** A passwd field cannot hold `:` or a line break: such a value would add fields or entries. */
function passwdField(value: string, fallback: string): string {
  return /^[^:\n\r\0]*$/.test(value) ? value : fallback;
}

export function resolveIdentity(runtime: Runtime, stored: Readonly<Record<string, string>>, rootRequested: boolean): Identity {
  const host = userInfo();
  const root = rootRequested || process.env.FIM_ROOT === "1" || leadingNumber(stored.UID) === 0;
  const uid = root ? 0 : leadingNumber(stored.UID) ?? host.uid;
  const gid = root ? 0 : leadingNumber(stored.GID) ?? host.gid;
  const user = uid === 0 ? "root" : passwdField(stored.USER ?? process.env.USER ?? host.username, host.username);
  const home = passwdField(root ? "/root" : stored.HOME ?? process.env.HOME ?? host.homedir, host.homedir);
  const shell = passwdField(stored.SHELL ?? `${runtime.paths.bin}/bash`, `${runtime.paths.bin}/bash`);
  return { uid, gid, user, home, shell };
}

/** A word for bash inside single quotes: the text is never code. */
const singleQuoted = (text: string) => `'${text.replaceAll("'", "'\\''")}'`;

/** The directory of the instance the guest sees (read-only). */
export const guestDir = (instance: string) => `${instance}/guest`;

export const identityPlugin: Plugin = {
  name: NAME,
  requires: ["env"],
  apply(runtime) {
    const log = runtime.logger(NAME);
    // After the environment's fact: the stored UID, GID, USER… decide.
    runtime.hooks.facts.tapPromise({ name: NAME, stage: 10 }, async (facts, request) => ({ ...facts, identity: resolveIdentity(runtime, facts.environment ?? {}, request.root) }));

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.identity }, async (operations, launch) => {
      const { identity } = launch;
      const dir = guestDir(runtime.paths.instance);
      mkdirSync(dir, { recursive: true });
      const passwd = `${identity.user}:x:${identity.uid}:${identity.gid}:${identity.user}:${identity.home}:${identity.shell}`;
      log.debug(`User: ${passwd}`);
      writeFileSync(`${dir}/passwd`, `${passwd}\n`);
      const ps1 = launch.facts.environment.PS1 ?? `[flatimage-${runtime.image.distribution.toLowerCase()}] \\W > `;
      writeFileSync(`${dir}/bashrc`, `export PS1=${singleQuoted(ps1)}`);
      launch.env.BASHRC_FILE = `${dir}/bashrc`;
      // The embedded bash reads ~/.bashrc, not $BASHRC_FILE: point interactive shells at it.
      const { program } = launch.request;
      if (program === "bash" || program === `${runtime.paths.bin}/bash`) launch.programArgs.push("--rcfile", `${dir}/bashrc`);
      return [
        ...operations,
        { op: "setenv", name: "USER", value: identity.user },
        { op: "identity", uid: identity.uid, gid: identity.gid },
        { op: "setenv", name: "HOME", value: identity.home },
        { op: "setenv", name: "SHELL", value: identity.shell },
        // fim-root keeps the image's own /etc/passwd so that package scripts can add users.
        ...(launch.request.root ? [] : [{ op: "bind", mode: "ro", source: `${dir}/passwd`, dest: "/etc/passwd" } as const]),
      ];
    });
  },
};
