// debian's root filesystem: Debian 12 (bookworm) minbase made by debootstrap, then adapted to
// the sandbox: apt works as root in a user namespace with a single mapped uid, the files the
// `network` permission binds over exist, and what the sandbox provides itself (/dev) or what
// only takes space (downloaded packages, package lists) is removed.
// This file's content is the cache key of the layer (scripts/rootfs.ts): it imports nothing
// from the repository that could change the result behind the key's back.
import { execa } from "execa";
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";

const SUITE = "bookworm";
const MIRROR = "http://deb.debian.org/debian";
/** A stuck download must not hang a build forever. */
const DEBOOTSTRAP_TIMEOUT_MS = 45 * 60_000;
const SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** The last `count` non-empty lines of a text, indented, for an error message. */
function tail(lines: string[], count = 12): string {
  const kept = lines.filter((line) => line.trim() !== "").slice(-count);
  return kept.length === 0 ? "(no output)" : kept.map((line) => `  ${line}`).join("\n");
}

function findProgram(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":"), ...SYSTEM_PATH.split(":")].filter((dir) => dir !== "");
  return dirs.map((dir) => `${dir}/${name}`).find((path) => existsSync(path));
}

function isRoot(): boolean {
  return process.geteuid?.() === 0;
}

/** Runs apt-get as root, non-interactively; throws naming the step on failure. */
async function aptGet(args: string[], step: string): Promise<void> {
  const result = await execa("apt-get", args, {
    reject: false,
    all: true,
    env: { DEBIAN_FRONTEND: "noninteractive", PATH: SYSTEM_PATH },
    stdin: "ignore",
  });
  if (result.failed) {
    const why = result.exitCode === undefined ? result.originalMessage ?? result.shortMessage : `exit ${result.exitCode}`;
    throw new Error(`${step} failed (${why}):\n${tail(String(result.all ?? "").split("\n"))}`);
  }
}

/** The debootstrap program, installed with apt-get when missing and we are root. */
async function ensureDebootstrap(progress: (text: string) => void): Promise<string> {
  const found = findProgram("debootstrap");
  if (found) return found;
  if (!isRoot()) {
    throw new Error("debootstrap is not installed: install it (as root: apt-get install debootstrap), then build again as root");
  }
  progress("installing debootstrap with apt-get");
  try {
    await aptGet(["install", "-y", "--no-install-recommends", "debootstrap"], "installing debootstrap with apt-get");
  } catch {
    // Package lists may be missing or stale (a fresh container): refresh them once.
    await aptGet(["update"], "apt-get update (to install debootstrap)");
    await aptGet(["install", "-y", "--no-install-recommends", "debootstrap"], "installing debootstrap with apt-get");
  }
  const installed = findProgram("debootstrap");
  if (!installed) throw new Error("installing debootstrap with apt-get succeeded, but no debootstrap program was found in /usr/sbin or PATH");
  return installed;
}

/** Mount points at or under `dir` (debootstrap mounts /proc and /sys in the target), deepest first. */
function mountsUnder(dir: string): string[] {
  const unescape = (path: string) => path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
  return readFileSync("/proc/self/mountinfo", "utf8")
    .split("\n")
    .map((line) => line.split(" ")[4])
    .filter((point): point is string => point !== undefined)
    .map(unescape)
    .filter((point) => point === dir || point.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/**
 * debootstrap unmounts what it mounted when it exits, but not if it is killed: whatever is
 * still mounted in the target must go before anything there is deleted (removing /dev or
 * the build's clean-up must never reach into the host's /proc, /sys or /dev).
 */
async function unmountLeftovers(dir: string): Promise<void> {
  for (const point of mountsUnder(dir)) await execa("umount", ["-l", point], { reject: false, env: { PATH: SYSTEM_PATH } });
  const left = mountsUnder(dir);
  if (left.length > 0) throw new Error(`cleaning up after debootstrap failed: still mounted in the root filesystem: ${left.join(", ")}`);
}

async function debootstrap(program: string, dir: string, progress: (text: string) => void): Promise<void> {
  progress(`debootstrap --variant=minbase ${SUITE} ${MIRROR}`);
  const recent: string[] = [];
  const subprocess = execa(program, ["--variant=minbase", SUITE, dir, MIRROR], {
    reject: false,
    all: true,
    buffer: false,
    stdin: "ignore",
    timeout: DEBOOTSTRAP_TIMEOUT_MS,
    env: { PATH: SYSTEM_PATH, LC_ALL: "C", DEBIAN_FRONTEND: "noninteractive" },
  });
  try {
    // stdout carries debootstrap's I:/W:/E: lines; the full log goes to <dir>/debootstrap/debootstrap.log.
    for await (const line of subprocess.iterable({ from: "all" })) {
      const text = String(line);
      recent.push(text);
      if (recent.length > 40) recent.shift();
      if (/^[IWE]: /.test(text)) progress(text);
    }
  } catch {
    // The iteration ends with the subprocess; its failure is reported below.
  }
  const result = await subprocess;
  if (!result.failed) return;
  const why = result.timedOut
    ? `timed out after ${DEBOOTSTRAP_TIMEOUT_MS / 60_000} minutes`
    : result.exitCode !== undefined
      ? `exit ${result.exitCode}`
      : result.signal
        ? `killed by ${result.signal}`
        : (result.originalMessage ?? result.shortMessage);
  const log = `${dir}/debootstrap/debootstrap.log`;
  const logTail = existsSync(log) ? `\nlast lines of debootstrap.log:\n${tail(readFileSync(log, "utf8").split("\n"), 15)}` : "";
  throw new Error(`debootstrap failed (${why}):\n${tail(recent)}${logTail}`);
}

/** Makes `path` a regular file with `content`, removing whatever else is there (a symlink may point anywhere on the host). */
function regularFile(path: string, content: string): void {
  if (isRegular(path) === false) rmSync(path, { recursive: true, force: true });
  writeFileSync(path, content);
  chmodSync(path, 0o644); // the host's copy may have had another mode
}

/** true: a regular file; false: something else; undefined: nothing. */
function isRegular(path: string): boolean | undefined {
  try {
    return lstatSync(path).isFile();
  } catch {
    return undefined;
  }
}

/** Apparent size of a tree (no symlink followed) and its number of entries. */
function treeSize(dir: string): { bytes: number; entries: number } {
  let bytes = 0;
  let entries = 0;
  const walk = (path: string) => {
    for (const entry of readdirSync(path, { withFileTypes: true })) {
      const full = `${path}/${entry.name}`;
      entries++;
      bytes += lstatSync(full).size;
      if (entry.isDirectory()) walk(full);
    }
  };
  walk(dir);
  return { bytes, entries };
}

function configure(dir: string, progress: (text: string) => void): void {
  progress("configuring apt for the sandbox");
  mkdirSync(`${dir}/etc/apt/apt.conf.d`, { recursive: true });
  writeFileSync(
    `${dir}/etc/apt/apt.conf.d/99flatimage`,
    [
      "// FlatImage: the guest is root in a user namespace that maps a single uid, so apt",
      "// cannot drop privileges to the '_apt' user to download (setgroups/setuid fail, and",
      "// the generated /etc/passwd has no '_apt' entry): download as root.",
      'APT::Sandbox::User "root";',
      "",
      "// apt chowns its terminal log to root:adm; 'adm' (from the host's /etc/group) is not",
      "// mapped in the user namespace, so every run warned. The log repeats what was on screen.",
      'Dir::Log::Terminal "/dev/null";',
      "",
      "// What apt leaves behind ends up in the layer 'fim-layer commit' makes: without these,",
      "// installing a 50 kB package after 'apt-get update' committed ~150 MB (uncompressed",
      "// package lists, their translations, two 38 MB binary caches). As Debian's container",
      "// images do: no binary caches (rebuilt in memory), lists kept gzipped, no translations,",
      "// downloaded packages deleted once installed.",
      'Dir::Cache::pkgcache "";',
      'Dir::Cache::srcpkgcache "";',
      'Acquire::GzipIndexes "true";',
      'Acquire::CompressionTypes::Order:: "gz";',
      'Acquire::Languages "none";',
      'APT::Keep-Downloaded-Packages "false";',
      "",
    ].join("\n"),
  );

  // The `network` permission binds the host's files over these; without it the guest sees
  // ours. debootstrap copies the host's resolv.conf (and hostname): they do not belong here.
  progress("resolver and host files");
  const etc = `${dir}/etc`;
  regularFile(`${etc}/resolv.conf`, "");
  if (!isRegular(`${etc}/hosts`)) regularFile(`${etc}/hosts`, "127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n");
  if (!isRegular(`${etc}/host.conf`)) regularFile(`${etc}/host.conf`, "multi on\n");
  if (!isRegular(`${etc}/nsswitch.conf`)) {
    const template = `${dir}/usr/share/libc-bin/nsswitch.conf`;
    const fallback = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\nnetworks: files\n";
    regularFile(`${etc}/nsswitch.conf`, isRegular(template) ? readFileSync(template, "utf8") : fallback);
  }
  regularFile(`${etc}/hostname`, "localhost\n");

  // Mount points of the sandbox, present in the layer so that bwrap need not create them in
  // the upper directory; /fim/config as in every bundle.
  for (const path of ["fim/config", "tmp", "proc", "sys", "dev", "run/media", "mnt", "media", "home", "root"]) {
    mkdirSync(`${dir}/${path}`, { recursive: true });
  }

  // Size: downloaded packages, package lists and apt's caches are rebuilt by `apt-get update`.
  progress("removing downloaded packages and package lists");
  const archives = `${dir}/var/cache/apt/archives`;
  if (existsSync(archives)) for (const name of readdirSync(archives)) if (name.endsWith(".deb")) rmSync(`${archives}/${name}`, { force: true });
  const cache = `${dir}/var/cache/apt`;
  if (existsSync(cache)) for (const name of readdirSync(cache)) if (name.endsWith(".bin")) rmSync(`${cache}/${name}`, { force: true });
  const lists = `${dir}/var/lib/apt/lists`;
  if (existsSync(lists)) {
    for (const name of readdirSync(lists)) if (name !== "partial" && name !== "lock") rmSync(`${lists}/${name}`, { recursive: true, force: true });
  }

  // The sandbox mounts its own /dev over this one: debootstrap's device nodes (and links to
  // /proc/self/fd) are dead weight, and device nodes have no place in a layer.
  progress("removing /dev's device nodes");
  for (const name of readdirSync(`${dir}/dev`)) rmSync(`${dir}/dev/${name}`, { recursive: true, force: true });
}

export async function bootstrap(dir: string, progress: (text: string) => void): Promise<void> {
  const program = await ensureDebootstrap(progress);
  if (!isRoot()) {
    throw new Error(
      "making the Debian root filesystem needs root (debootstrap creates files owned by other users and device nodes): build as root once; the layer is then cached under .cache/rootfs",
    );
  }
  const target = realpathSync(dir);
  const started = Date.now();
  let failure: Error | undefined;
  try {
    await debootstrap(program, target, progress);
  } catch (error) {
    failure = error as Error;
  }
  try {
    await unmountLeftovers(target);
  } catch (error) {
    throw new Error(failure ? `${failure.message}\nand then ${(error as Error).message}` : (error as Error).message);
  }
  if (failure) throw failure;
  progress(`debootstrap done in ${Math.round((Date.now() - started) / 1000)} s`);
  try {
    configure(target, progress);
  } catch (error) {
    throw new Error(`adapting the Debian root filesystem to the sandbox failed: ${(error as Error).message}`);
  }
  const { bytes, entries } = treeSize(target);
  progress(`root filesystem: ${(bytes / 1024 / 1024).toFixed(1)} MiB in ${entries} entries`);
}
