// The run's plan, kept for the boot stub to replay without the launcher (fim_stub.c,
// "replay"). A start beside a running instance spends most of its time in Bun's start and
// the planning, whose result depends only on what the stub can check again: the image (its
// identity), the command line, the environment, the working directory, the user and the
// terminals, the umask (the record's name and key, computed by the stub), what the planning read of the
// host (lib/track.ts: each path's stat(2) signature, or its bytes for /proc and /sys), and
// the namespace holder it joined (its record, PID and start time). When all of that is
// unchanged, the stub does what the launcher did last: takes the same locks, writes the
// same instance directory, prints the same lines and hands over to the same supervisor
// with the same arguments and environment. Anything a replay could not do again (a stored
// `$(…)`, a notification, a descriptor it does not know) keeps the run from being recorded.
//
// The record: fields of `name NUL length NUL bytes`, in this order: version, key,
// dependency* (kind NUL path NUL value), mounts, data, holder-pid, holder-started,
// holder-record, instance, fd* (role NUL number), dir* (path in the instance directory),
// file* (path NUL octal mode NUL "raw" or "marked" NUL bytes), say* (level NUL tag NUL message), exec, arg*, env*
// (NAME=value). In every string after `instance`, INSTANCE_MARK stands for the instance
// directory, PID_MARK (the whole value of FIM_PID) for the process's PID and, in
// instance.json, STARTED_MARK for its start time.
import { lstatSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync, mkdirSync } from "../../lib/fs.ts";
import { dirname } from "../../lib/path.ts";
import { startWatch, stopWatch, type Watch } from "../../lib/track.ts";
import { keepTranscript, type PrintedLine } from "../../core/log.ts";
import { entriesOf } from "../../core/paths.ts";
import { leftoversOfEnded, startTime } from "../../core/proc.ts";
import type { Runtime } from "../../core/runtime.ts";
import type { Holder } from "./holder.ts";

export const RECORD_VERSION = "1";
const INSTANCE_MARK = "\x01I\x01";
const STARTED_MARK = "\x01S\x01";
const PID_MARK = "\x01P\x01";

/**
 * What a desktop sets anew at every start of an application, for the application alone: its
 * startup notification's id (X11), its activation token (Wayland), the PID GLib gives the
 * process it launched. The planning never sees them (takePassedThrough) and the guest gets
 * them as given, so one record serves every value: the stub leaves them out of the key and
 * passes on the start's own (fim_stub.c, passed_through). A launcher clicked again replays.
 */
export const PASSED_THROUGH = ["DESKTOP_STARTUP_ID", "XDG_ACTIVATION_TOKEN", "GIO_LAUNCHED_DESKTOP_FILE_PID"] as const;

/** Takes the PASSED_THROUGH variables out of the environment, for the guest's alone. */
export function takePassedThrough(env: Record<string, string | undefined>): Record<string, string> {
  const taken: Record<string, string> = {};
  for (const name of PASSED_THROUGH) {
    if (env[name] === undefined) continue;
    taken[name] = env[name]!;
    delete env[name];
  }
  return taken;
}

/** Where the stub looks for this start's record, and its key (FIM_BOOT_REPLAY, FIM_BOOT_REPLAY_KEY). */
export interface ReplayPlace {
  path: string;
  key: string;
}

export interface Recording {
  place: ReplayPlace;
  watch: Watch;
  transcript: PrintedLine[];
}

/**
 * Starts watching what the run reads and prints, when the stub said where to keep its record
 * and the run is likely to join a running holder: not when the stub started one for it.
 */
export function startRecording(place: ReplayPlace | undefined, headStart: boolean): Recording | undefined {
  if (!place || headStart || process.env.FIM_PROFILE === "1") return undefined;
  return { place, watch: startWatch(), transcript: keepTranscript() };
}

/** The run's own trees: the replay makes the instance directory and checks the holder's itself. */
export function ignoreRunTrees(recording: Recording | undefined, runtime: Runtime): void {
  recording?.watch.ignored.push(`${runtime.paths.app}/instance`, runtime.paths.mounts);
}

export interface HandOverPlan {
  path: string;
  argv: string[];
  env: Record<string, string | undefined>;
  holder: Holder;
  heldFds: number[];
}

const field = (name: string, ...parts: (string | Buffer)[]): Buffer => {
  const bytes = parts.map((part) => (typeof part === "string" ? Buffer.from(part) : part));
  const value = bytes.length === 1 ? bytes[0]! : Buffer.concat(bytes.flatMap((part, index) => (index ? [Buffer.from([0]), part] : [part])));
  return Buffer.concat([Buffer.from(`${name}\0${value.length}\0`), value]);
};

/** The instance directory's files and directories, parents first (relative paths). */
function walk(root: string, blockers: string[], sub = ""): { dirs: string[]; files: string[] } {
  const dirs: string[] = [];
  const files: string[] = [];
  for (const name of readdirSync(sub ? `${root}/${sub}` : root).sort()) {
    const relative = sub ? `${sub}/${name}` : name;
    if (relative === ".alive") continue; // its lock is taken again
    const stat = lstatSync(`${root}/${relative}`);
    if (stat.isDirectory()) {
      dirs.push(relative);
      const inner = walk(root, blockers, relative);
      dirs.push(...inner.dirs);
      files.push(...inner.files);
    } else if (stat.isFile()) files.push(relative);
    else blockers.push(`the instance directory holds '${relative}', neither a file nor a directory`);
  }
  return { dirs, files };
}

/** Writes the record of this run's hand-over, or removes an old one when the run cannot be replayed. */
export function saveReplay(runtime: Runtime, recording: Recording, plan: HandOverPlan): void {
  const { watch, place, transcript } = recording;
  stopWatch();
  const log = runtime.logger("sandbox");
  const { instance, app, mounts, data } = runtime.paths;
  const blockers = [...watch.blockers];
  const pid = String(process.pid);
  const pidWord = new RegExp(`(^|[^0-9])${pid}([^0-9]|$)`);
  const needle = Buffer.from(instance).toString("latin1");
  const names = (text: string) => text.includes(pid) && pidWord.test(text);
  const mark = (text: string, what: string): string | Buffer => {
    if (text.includes("\x01")) blockers.push(`${what} holds a byte 1, which the record uses for its marks`);
    if (names(text.split(instance).join(""))) blockers.push(`${what} names this process`);
    return text.includes(instance) ? Buffer.from(Buffer.from(text).toString("latin1").split(needle).join(INSTANCE_MARK), "latin1") : text;
  };

  const fds: Buffer[] = [];
  for (const fd of [plan.holder.guestLock, ...plan.heldFds]) {
    let target = "";
    try {
      target = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      // not open: the supervisor's --close of it does nothing either way
    }
    const role = fd === plan.holder.guestLock ? "guests" : target === `${instance}/.alive` ? "alive" : target === `${app}/.lock` ? "build" : undefined;
    if (role) fds.push(field("fd", role, String(fd)));
    else blockers.push(`the supervisor keeps a descriptor the stub cannot take again ('${target}')`);
  }

  const own = startTime("self") ?? "";
  const tree = walk(instance, blockers);
  // A file that names the instance directory (or is instance.json) is stored with marks;
  // any other as its bytes (a seccomp program may hold any byte).
  const files = tree.files.map((relative) => {
    const path = `${instance}/${relative}`;
    const bytes = readFileSync(path);
    const mode = (lstatSync(path).mode & 0o7777).toString(8);
    if (relative !== "instance.json" && !bytes.includes(needle, 0, "latin1")) {
      if (bytes.includes(pid) && names(bytes.toString("latin1"))) blockers.push(`'${relative}' names this process`);
      return field("file", relative, mode, "raw", bytes);
    }
    const latin1 = bytes.toString("latin1");
    const text = relative === "instance.json" && own ? latin1.split(`"${own}"`).join(`"${STARTED_MARK}"`) : latin1;
    if (latin1.includes("\x01")) blockers.push(`'${relative}' holds a byte 1, which the record uses for its marks`);
    const unmarked = text.split(needle).join(INSTANCE_MARK);
    if (names(unmarked.split(INSTANCE_MARK).join(""))) blockers.push(`'${relative}' names this process`);
    return field("file", relative, mode, "marked", Buffer.from(unmarked, "latin1"));
  });

  const say = transcript.map((line) => field("say", line.level, line.tag, mark(line.message, "a printed line")));
  const args = plan.argv.map((word) => field("arg", mark(word, "the supervisor's command line")));
  const env = Object.entries(plan.env).flatMap(([name, value]) => {
    if (value === undefined) return [];
    // The launcher's PID, which is the stub's and the supervisor's (execve keeps it).
    if (name === "FIM_PID" && value === pid) return [field("env", `${name}=${PID_MARK}`)];
    return [field("env", mark(`${name}=${value}`, `variable ${name}`))];
  });

  if (blockers.length > 0) {
    log.debug(`This run's plan is not kept for a replay: ${blockers[0]}`);
    rmSync(place.path, { force: true });
    return;
  }
  const holderRecord = readFileSync(`${mounts}/holder.json`);
  const record = Buffer.concat([
    field("version", RECORD_VERSION),
    field("key", place.key),
    ...[...watch.dependencies.values()].map((d) => field("dependency", d.kind, d.path, Buffer.from(d.value, d.kind === "content" ? "latin1" : "utf8"))),
    field("mounts", mounts),
    field("data", data),
    field("holder-pid", String(plan.holder.pid)),
    field("holder-started", startTime(plan.holder.pid) ?? ""),
    field("holder-record", holderRecord),
    field("instance", instance),
    ...fds,
    ...tree.dirs.map((relative) => field("dir", relative)),
    ...files,
    ...say,
    field("exec", plan.path),
    ...args,
    ...env,
  ]);
  try {
    // The same record, that only we may write: the stub refused it for another reason (a busy holder).
    if ((lstatSync(place.path).mode & 0o077) === 0 && readFileSync(place.path).equals(record)) return;
  } catch {
    // none yet
  }
  const temporary = `${place.path}.${pid}.tmp`;
  const dir = dirname(place.path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(temporary, record, { mode: 0o600 });
  renameSync(temporary, place.path);
  log.debug(`Kept this run's plan for a replay: ${place.path}`);
  prune(dir);
}

/** Records kept per build: each environment has its own, and some change at every start (a desktop's startup id). */
export const RECORDS_KEPT = 64;

/** Removes what saves killed midway left, and the least recently written records beyond RECORDS_KEPT. */
function prune(dir: string): void {
  for (const name of leftoversOfEnded(dir, /^[0-9a-f]{16}\.(\d+)\.tmp$/)) rmSync(`${dir}/${name}`, { force: true });
  const records = entriesOf(dir).filter((name) => /^[0-9a-f]{16}$/.test(name));
  if (records.length <= RECORDS_KEPT) return;
  const written = new Map(records.map((name) => [name, lstatSync(`${dir}/${name}`, { throwIfNoEntry: false })?.mtimeMs ?? 0]));
  for (const name of records.sort((a, b) => written.get(a)! - written.get(b)!).slice(0, records.length - RECORDS_KEPT)) rmSync(`${dir}/${name}`, { force: true });
}
