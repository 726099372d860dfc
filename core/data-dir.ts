// The data directory (reference §7.4): where it is, and the checks before a run uses it.
//
// Where: $FIM_DIR_DATA when set; otherwise `.<name>.data` beside the image, unless the image
// lies where this user cannot write (e.g. /opt) and has no data directory of theirs there:
// then a per-user one, `<$XDG_DATA_HOME or ~/.local/share>/flatimage/<name>-<hash>.data`,
// the hash being that of the image's path (two images of one name do not share it). Once
// made, the per-user one is kept. Deciding costs a stat or two and creates nothing, so
// configuration commands work next to an image in a read-only place.
//
// Checks (prepareDataDir): the guest's root is `<data>/root`, and managed layers are
// mounted from `<data>/layers`, so a directory someone else controls decides what runs in
// the sandbox. The data directory, its `root` and `tmp`, and every directory the image
// creates on the way to it must be owned by this user and not writable by others (a
// group's write bit is fine when the group is the user's own private group).
import { accessSync, canAccess, constants, lstatSync, mkdirSync, readFileSync, statSync, type Stats } from "../lib/fs.ts";
import { homedir } from "../lib/node.ts";
import { basename, dirname, join, resolve } from "../lib/path.ts";
import { FimError } from "./errors.ts";
import { formatLine, logger, write } from "./log.ts";

export interface DataDirChoice {
  path: string;
  /** `env`: $FIM_DIR_DATA; `image`: beside the image; `user`: the per-user fall-back. */
  source: "env" | "image" | "user";
  /** Why it is not beside the image (source `user`). */
  reason?: string;
}

const uidOf = () => process.getuid?.() ?? 0;
const gidOf = () => process.getgid?.() ?? 0;

function statOrUndefined(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

const F_OK = 0;
const W_OK = 2;
const X_OK = 1;
const canWrite = (dir: string) => canAccess(dir, W_OK | X_OK);

/** $XDG_DATA_HOME when it is absolute (then it is the data home, whoever $HOME is). */
const xdgDataHome = (env: NodeJS.ProcessEnv): string | undefined => (env.XDG_DATA_HOME?.startsWith("/") ? env.XDG_DATA_HOME : undefined);
const underHome = (home: string) => `${home}/.local/share`;

/** `~/.local/share`, or $XDG_DATA_HOME when it is absolute; a $HOME of someone else (sudo keeps it) is not used. */
function dataHome(env: NodeJS.ProcessEnv, uid: number): string {
  return xdgDataHome(env) ?? underHome(env.HOME && statOrUndefined(env.HOME)?.uid === uid ? env.HOME : homedir());
}

/** Where the per-user data directory of the image at `image` is in a data home. */
function userDataName(image: string): string {
  const hash = new Bun.CryptoHasher("sha256").update(image).digest("hex").slice(0, 16);
  return `flatimage/${basename(image)}-${hash}.data`;
}

/** The per-user data directory of the image at `image` (an absolute path). */
export function userDataDir(image: string, env: NodeJS.ProcessEnv = process.env, uid = uidOf()): string {
  return `${dataHome(env, uid)}/${userDataName(image)}`;
}

/** Whether the per-user data directory was made; access(2) says no without node:fs when it is in no data home dataHome can choose. */
function userDataDirExists(image: string, env: NodeJS.ProcessEnv, uid: number): boolean {
  // Every data home dataHome can choose (os.homedir() is $HOME when that is set, Node's rule
  // and Bun's: no need to ask it then).
  const xdg = xdgDataHome(env);
  const homes = env.HOME && env.HOME === process.env.HOME ? [env.HOME] : [...(env.HOME ? [env.HOME] : []), homedir()];
  const dataHomes = xdg ? [xdg] : homes.map(underHome);
  if (!dataHomes.some((home) => canAccess(`${home}/${userDataName(image)}`, F_OK))) return false;
  return statOrUndefined(userDataDir(image, env, uid))?.isDirectory() === true;
}

export function locateDataDir(image: string, env: NodeJS.ProcessEnv = process.env, uid = uidOf()): DataDirChoice {
  if (env.FIM_DIR_DATA !== undefined) return { path: resolve(env.FIM_DIR_DATA), source: "env" };
  const dir = dirname(image);
  const beside: DataDirChoice = { path: join(dir, `.${basename(image)}.data`), source: "image" };
  const fallback = (reason: string): DataDirChoice => ({ path: userDataDir(image, env, uid), source: "user", reason });
  // access(2), not stat: a brief command then decides without node:fs (lib/fs.ts).
  if (canAccess(beside.path, F_OK)) {
    // Where this user could have made it, someone else's is refused (prepareDataDir says
    // why); where they could not, it was never theirs to use.
    if (canWrite(dir)) return beside;
    const existing = statOrUndefined(beside.path);
    if (existing?.uid === uid && canWrite(beside.path)) return beside;
    return fallback(existing?.uid === uid ? `'${beside.path}' is not writable` : `'${beside.path}' is not yours and '${dir}' is not writable`);
  }
  if (!canWrite(dir)) return fallback(`'${dir}' is not writable`);
  if (userDataDirExists(image, env, uid)) return fallback(`a per-user data directory was made while '${dir}' was not writable`);
  return beside;
}

/** Names of ids in /etc/passwd or /etc/group (NSS-only names are shown as numbers). */
function nameOf(file: "/etc/passwd" | "/etc/group", id: number): string | undefined {
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const fields = line.split(":");
      if (fields[2] === String(id)) return fields[0];
    }
  } catch {
    // no such file: numbers only
  }
  return undefined;
}

function who(uid: number): string {
  if (uid === 0) return "root";
  const name = nameOf("/etc/passwd", uid);
  return name === undefined ? `uid ${uid}` : `${name} (uid ${uid})`;
}
const quoted = (path: string) => `'${path.replace(/'/g, "'\\''")}'`;

const readOrEmpty = (file: string) => {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
};
const entries = (text: string) => text.split("\n").map((line) => line.split(":"));

/**
 * A group of one (user private groups): the user's primary group, named like the user, with
 * no other member and the primary group of no other user. A name alone is not enough: a
 * group can be named like a user and shared.
 */
export function isPrivateGroup(gid: number, uid: number, primary: number, passwd: string, group: string): boolean {
  if (gid !== primary) return false;
  const user = entries(passwd).find((fields) => fields[2] === String(uid))?.[0];
  const entry = entries(group).find((fields) => fields[2] === String(gid));
  if (user === undefined || entry === undefined || entry[0] !== user) return false;
  if ((entry[3] ?? "").split(",").some((member) => member.trim() !== "" && member.trim() !== user)) return false;
  return !entries(passwd).some((fields) => fields[3] === String(gid) && fields[0] !== user);
}

function privateGroup(gid: number, uid: number): boolean {
  return isPrivateGroup(gid, uid, gidOf(), readOrEmpty("/etc/passwd"), readOrEmpty("/etc/group"));
}

interface Check {
  dir: string;
  /** What `chown -R` should repair when the directory is not this user's. */
  repair: string;
  /**
   * The directory was chosen with FIM_DIR_DATA and the image did not make it (it may be
   * /tmp or another user's): the advice is to choose another, never to change it.
   */
  chosen: boolean;
}

function refuse(message: string): never {
  throw new FimError(message, { level: "C" });
}

const CHOOSE = "set FIM_DIR_DATA to a directory of yours that only you can write";
const RECHOOSE = "Unset FIM_DIR_DATA, or set it to a directory of yours that only you can write";

function checkOne({ dir, repair, chosen }: Check, uid: number): void {
  const link = lstatSync(dir);
  if (link.isSymbolicLink() && link.uid !== uid && link.uid !== 0) {
    refuse(`The data directory '${dir}' is a link made by ${who(link.uid)}, not by you (uid ${uid}): what it leads to would run in your sandbox. Remove the link, or ${CHOOSE}`);
  }
  const info = statSync(dir);
  if (!info.isDirectory()) throw Object.assign(new Error(`'${dir}' is not a directory`), { code: "ENOTDIR" });
  if (info.uid !== uid) {
    if (chosen) refuse(`The data directory '${dir}' belongs to ${who(info.uid)}, not to you (uid ${uid}): what it holds would run in your sandbox. ${RECHOOSE}`);
    if (info.uid === 0) {
      refuse(
        `The data directory '${dir}' belongs to root, not to you (uid ${uid}): a run of the image with sudo probably made it. ` +
          `Give it back with: sudo chown -R ${uid}:${gidOf()} ${quoted(repair)} (or ${CHOOSE})`,
      );
    }
    refuse(`The data directory '${dir}' belongs to ${who(info.uid)}, not to you (uid ${uid}): what it holds would run in your sandbox. Have it removed, or ${CHOOSE}`);
  }
  const others = (info.mode & 0o002) !== 0 || ((info.mode & 0o020) !== 0 && !privateGroup(info.gid, uid));
  if (others) {
    const mode = (info.mode & 0o7777).toString(8).padStart(4, "0");
    const fix = chosen ? RECHOOSE : `Make it private: chmod go-w ${quoted(dir)}`;
    refuse(`The data directory '${dir}' is writable by other users (mode ${mode}): they could change what runs in your sandbox. ${fix}`);
  }
  accessSync(dir, constants.W_OK | constants.X_OK);
}

/** Creates `dir` and the parents it lacks; returns those it created, outermost first. */
function makeDirs(dir: string, mode: number, parentMode: number): string[] {
  try {
    mkdirSync(dir, { mode });
    return [dir];
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "EEXIST") return [];
    if (code !== "ENOENT" || dirname(dir) === dir) throw error;
  }
  const parents = makeDirs(dirname(dir), parentMode, parentMode);
  return [...parents, ...makeDirs(dir, mode, parentMode)];
}

/**
 * Creates the data directory with its `root` and `tmp` and checks them (and every directory
 * made on the way) before a run: exit 125 with what to do when one is someone else's,
 * writable by others, or unusable. Says once where a per-user data directory was made.
 */
export function prepareDataDir(paths: { data: string; upper: string; tmp: string; dataChoice?: DataDirChoice }, uid = uidOf()): void {
  const choice = paths.dataChoice ?? { path: paths.data, source: "env" };
  const { data } = paths;
  let current = data;
  const check = (dir: string, repair: string, chosen = false) => {
    current = dir;
    checkOne({ dir, repair, chosen }, uid);
  };
  try {
    // The per-user tree follows the XDG rule (0700); a FIM_DIR_DATA path gets ordinary parents.
    const parentMode = choice.source === "user" ? 0o700 : 0o755;
    const created = makeDirs(dirname(data), parentMode, parentMode);
    for (const dir of created) check(dir, dir);
    // The per-user tree's `flatimage` directory is the image's, made now or before.
    if (choice.source === "user" && !created.includes(dirname(data))) check(dirname(data), dirname(data));
    current = data;
    const madeData = makeDirs(data, 0o700, parentMode).length > 0;
    if (madeData) created.push(data);
    check(data, data, choice.source === "env" && !madeData);
    // Only inside a directory that passed: nothing is made in someone else's.
    for (const dir of [paths.upper, paths.tmp]) {
      current = dir;
      mkdirSync(dir, { recursive: true, mode: 0o755 });
      check(dir, data);
    }
    if (choice.source === "user") {
      const message = `The data directory cannot be beside the image (${choice.reason}): using '${data}'`;
      if (created.includes(data)) write(2, formatLine("W", "data-dir", message));
      else logger("data-dir").debug(message);
    }
  } catch (error) {
    if (error instanceof FimError) throw error;
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new FimError(`The data directory '${data}' is not usable (${code} on '${current}'): set FIM_DIR_DATA to a writable directory`, { level: "C" });
  }
}
