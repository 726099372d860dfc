// The directory a guest starts in (reference §9.7): bwrap keeps the caller's working directory
// when that path exists in the sandbox, else goes to $HOME or `/`, silently. A program given
// `./in.json` then reads the wrong place, or nothing. This says so, and what would show it.

export interface CwdContext {
  /** The launcher's working directory on the host (absolute). */
  cwd: string;
  /** Host paths the sandbox shows at the same place (binds whose source is their destination). */
  visible: readonly string[];
  /** What each permission would show, e.g. `{ home: ["/home/u"], media: ["/media", "/run/media", "/mnt"] }`. */
  grantable?: Readonly<Record<string, readonly string[]>>;
}

const trimmed = (path: string) => (path.length > 1 ? path.replace(/\/+$/, "") || "/" : path);

const within = (path: string, dir: string) => {
  const base = trimmed(dir);
  return base === "/" || path === base || path.startsWith(`${base}/`);
};

const quoted = (path: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, "'\\''")}'`);

/**
 * The warning for a working directory the guest cannot see, or undefined when it can (or when
 * it is `/`, where the guest starts anyway). Say it once per run.
 */
export function cwdWarning({ cwd, visible, grantable = {} }: CwdContext): string | undefined {
  const path = trimmed(cwd);
  if (path === "/" || visible.some((dir) => within(path, dir))) return undefined;
  const permission = Object.entries(grantable).find(([, dirs]) => dirs.some((dir) => dir !== "/" && within(path, dir)))?.[0];
  const bind = `'fim-bind add rw ${quoted(path)} ${quoted(path)}'`;
  const grant = permission ? `'fim-perms add ${permission}' or ${bind}` : bind;
  return `The working directory '${path}' is not visible in the sandbox, so the program does not start there (relative paths do not reach its files): grant it with ${grant}`;
}
