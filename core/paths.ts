// Where things live on the host (reference §6.2, §7.3, §7.4), computed once per process.
// Directories are created by whoever needs them, not here: a configuration command
// must work next to an image in a read-only directory.
import { chmodSync, lstatSync, mkdirSync, readdirSync } from "../lib/fs.ts";
import { dirname } from "../lib/path.ts";
import { locateDataDir, type DataDirChoice } from "./data-dir.ts";
import type { Image } from "./image.ts";

export interface Paths {
  /** Absolute path of the image file (FIM_BIN_SELF). */
  image: string;
  /** /tmp/fim: shared by every user (sticky, world-writable). */
  global: string;
  /**
   * Per user and per build: <R>/<buildId>, R being the per-user runtime directory the boot
   * stub chose ($XDG_RUNTIME_DIR/fim/app, /tmp/fim/app/<uid> or ~/.cache/fim/app; it
   * passes the build's directory as FIM_DIR_APP). Private to the user (0700).
   */
  app: string;
  bin: string;
  sbin: string;
  /** This process's instance directory: <app>/instance/<pid>. */
  instance: string;
  /** Where the data directory's shared mounts live: <app>/mounts/<hash of the data directory>. */
  mounts: string;
  /** The data directory: $FIM_DIR_DATA, <dir>/.<name>.data next to the image, or a per-user one (core/data-dir.ts). */
  data: string;
  dataChoice: DataDirChoice;
  layers: string;
  upper: string;
  tmp: string;
  runtime: string;
  runtimeHost: string;
}

export const GLOBAL_DIR = "/tmp/fim";

export function appDir(uid: number, buildId: string): string {
  return `${GLOBAL_DIR}/app/${uid}/${buildId}`;
}

/** The build's runtime directory: the stub's choice, else (no stub: a bare launcher) /tmp's. */
function buildDir(image: Image, env: NodeJS.ProcessEnv): string {
  const given = env.FIM_DIR_APP;
  if (given !== undefined && given.startsWith("/") && given.endsWith(`/${image.header.buildId}`) && !given.includes("/../")) return given;
  return appDir(process.getuid?.() ?? 0, image.header.buildId);
}

export function computePaths(image: Image, env: NodeJS.ProcessEnv = process.env): Paths {
  const self = image.path;
  const app = buildDir(image, env);
  const dataChoice = locateDataDir(self, env);
  const data = dataChoice.path;
  return {
    image: self,
    global: GLOBAL_DIR,
    app,
    bin: `${app}/bin`,
    sbin: `${app}/sbin`,
    instance: `${app}/instance/${process.pid}`,
    mounts: `${app}/mounts/${new Bun.CryptoHasher("sha256").update(data).digest("hex").slice(0, 16)}`,
    data,
    dataChoice,
    layers: `${data}/layers`,
    upper: `${data}/root`,
    tmp: `${data}/tmp`,
    runtime: `${GLOBAL_DIR}/run`,
    runtimeHost: `${GLOBAL_DIR}/run/host`,
  };
}

/** The variables every process of the image exports (reference §6.2). */
export function exportEnvironment(image: Image, paths: Paths, env: NodeJS.ProcessEnv = process.env): void {
  const { header } = image;
  env.FIM_VERSION = header.version;
  env.FIM_COMMIT = header.commit;
  env.FIM_DIST = header.distribution;
  env.FIM_TIMESTAMP = header.timestamp;
  env.FIM_BIN_SELF = paths.image;
  env.FIM_OFFSET = String(image.reservedOffset);
  env.FIM_DIR_SELF = dirname(paths.image);
  env.FIM_DIR_GLOBAL = paths.global;
  env.FIM_DIR_APP = paths.app;
  env.FIM_DIR_APP_BIN = paths.bin;
  env.FIM_DIR_APP_SBIN = paths.sbin;
  env.FIM_DIR_INSTANCE = paths.instance;
  env.FIM_DIR_LAYERS = paths.layers;
  env.FIM_DIR_DATA = paths.data;
  env.FIM_DIR_RUNTIME = paths.runtime;
  env.FIM_DIR_RUNTIME_HOST = paths.runtimeHost;
  env.FIM_PID = String(process.pid);
  const libraryPath = env.LD_LIBRARY_PATH;
  env.LD_LIBRARY_PATH = `/usr/lib/x86_64-linux-gnu:/usr/lib/i386-linux-gnu${libraryPath !== undefined ? `:${libraryPath}` : ""}`;
  env.PATH = `${paths.bin}:${env.PATH ?? ""}:/sbin:/usr/sbin:/usr/local/sbin:/bin:/usr/bin:/usr/local/bin:${paths.sbin}`;
}

/** Creates a directory shared by all users (mode 1777), like /tmp itself. */
function sharedDir(path: string): void {
  try {
    mkdirSync(path, { mode: 0o1777 });
    chmodSync(path, 0o1777); // the umask narrowed it
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
  }
}

/** Creates /tmp/fim/app/<uid>, private to this user; refuses one owned by someone else. */
export function ensureUserDir(uid = process.getuid?.() ?? 0): string {
  sharedDir(GLOBAL_DIR);
  sharedDir(`${GLOBAL_DIR}/app`);
  const dir = `${GLOBAL_DIR}/app/${uid}`;
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  if (!info.isDirectory() || info.uid !== uid) {
    throw new Error(`'${dir}' is not a directory owned by uid ${uid}; remove it and retry`);
  }
  if ((info.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

/** $XDG_RUNTIME_DIR, or /run/user/<uid> (reference §6.1). */
export function runtimeDir(): string {
  return process.env.XDG_RUNTIME_DIR || `/run/user/${process.getuid?.() ?? 0}`;
}

/** The names in a directory; none when it cannot be read (absent, not ours): for sweeps and listings that skip what they cannot see. */
export function entriesOf(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
