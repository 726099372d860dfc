// The namespace holder of a data directory: one private user+pid+mount namespace where the
// layers and the writable root are mounted once, shared by every run on that directory.
// The first run starts it (detached, so it outlives that run if others use it); every run,
// the first included, enters it and starts its own guest sandbox there. Each run holds a
// shared lock on `guests.lock` for as long as it lives; the holder waits for an exclusive
// one, so it ends with its last guest, and a process killed in any way releases its lock.
//
// Mounting takes about as long as loading the launcher, so a start does both at once: the
// boot stub starts the holder the last start with the same data-directory choice started
// (fim_stub.c, head start), from the plan that start saved here. When the run's own plan
// turns out to be the same, that holder is kept; otherwise it is ended (nobody can have
// joined it: the start lock is held until then) and the run's own is started.
import type { Subprocess } from "bun";
import { closeFile, closeSync, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "../../lib/fs.ts";
import { dirname } from "../../lib/path.ts";
import { FimError } from "../../core/errors.ts";
import type { Launch } from "../../core/launch.ts";
import { flock, LOCK_SH, reap, tryLock, LOCK_EX } from "../../core/libc.ts";
import { childrenOf, leftoversOfEnded, parentOf, startTime } from "../../core/proc.ts";
import { event } from "../../core/profile.ts";
import { tryLockDataDirectory, workDirectory } from "../../core/run-services.ts";
import type { Runtime } from "../../core/runtime.ts";
import { supervisorArgs } from "./plan.ts";

interface HolderRecord {
  pid: number;
  started: string;
  /** What the holder mounted (steps and root): a run that would mount otherwise cannot share it. */
  key: string;
  /** The same, for people: overlay type, casefold, layers. */
  summary: string;
}

/** How a run would start the holder: its command line, and what it mounts. */
export interface HolderPlan {
  key: string;
  summary: string;
  argv: string[];
}

export interface Holder {
  /** Host PID of the holder's pid 1 (fim_supervise): `fim_enter --join` enters its namespaces. */
  pid: number;
  /** Descriptor of this run's shared lock, to be kept by its supervisor. */
  guestLock: number;
  /** Whether this run started it. */
  started: boolean;
}

/** A holder starting: ended if this run does not join it, or let outlive the run. */
interface Starting {
  /** The host PID of its pid 1 once every mount is ready. */
  ready: Promise<number>;
  /** Ends it (nobody joined it): its pid 1's end takes every process and mount of it along. */
  end(): Promise<void>;
  /** Lets it outlive this run. */
  keep(): void;
}

/** The holder the boot stub started, with the locks it took for this run. */
export interface HeadStart {
  starting: Starting;
  pid: number;
  startLock: number;
  guestLock: number;
  dataLock: number;
}

/** Where a run stands once it has the start lock: a holder runs, or this run must start one. */
export type HolderEntry =
  | { kind: "running"; record: HolderRecord; guestLock: number }
  | { kind: "free"; startLock: number; guestLock: number; dataLock: number; headStart?: HeadStart };

const START_WAIT_MS = 30_000;

export async function holderPlan(runtime: Runtime, launch: Launch): Promise<HolderPlan> {
  const { mounts, data } = runtime.paths;
  const supervise = await runtime.tool("fim_supervise");
  const argv = supervisorArgs(supervise, {
    // Its own user, mount and pid namespaces, where it is root: the host's root as it is, with
    // a /proc of its own (bwrap made a new root the holder does not need, in one process more).
    namespace: true,
    log: `${mounts}/holder.log`,
    // fd 3: the data directory's lock, held by the holder for as long as it lives.
    close: [3],
    // What a holder killed before its end left there (only the holder of the lock may).
    fresh: [workDirectory(runtime)],
    steps: launch.steps,
    notify: 1,
    // The work directory is <data>/work/holder, and nothing else lives in <data>/work.
    after: [{ kind: "remove", paths: [`${data}/work`] }],
    hold: `${mounts}/guests.lock`,
  });
  const key = new Bun.CryptoHasher("sha256").update(JSON.stringify({ steps: launch.steps, root: launch.root })).digest("hex");
  const { overlay, casefold } = launch.facts;
  return { key, argv, summary: `overlay ${overlay}, casefold ${casefold ? "on" : "off"}, ${launch.lowerDirs.length} lower layer(s)` };
}

/** The identity of the image file the stub compares before a head start: dev:inode:size:mtime (ns). */
function imageIdentity(path: string): string {
  const { dev, ino, size, mtimeNs } = statSync(path, { bigint: true });
  return `${dev}:${ino}:${size}:${mtimeNs}`;
}

/** NUL-ended keys and values (fim_stub.c, head start); undefined when unreadable. */
function readStartPlan(file: string): [string, string][] | undefined {
  try {
    const words = readFileSync(file, "utf8").split("\0");
    if (words.pop() !== "" || words.length % 2 !== 0) return undefined;
    return words.flatMap((word, index) => (index % 2 === 0 ? [[word, words[index + 1]!] as [string, string]] : []));
  } catch {
    return undefined;
  }
}

/**
 * What the boot stub handed over for the holder (fim_stub.c, head start): where this start's
 * plan is kept, the holder it started from it ("pid,ready fd,start lock fd,guests' lock
 * fd,data lock fd"), and the command argv resolved to, by whose name the stub looks it up.
 */
export interface HandOver {
  startPlan?: string;
  holder?: string;
  command?: string;
  /** Where this start's plan is kept for a replay, and its key (fim_stub.c, replay). */
  replay?: { path: string; key: string };
}

/** Takes the hand-over out of the environment: the processes this one starts do not see it. */
export function takeHandOver(env: NodeJS.ProcessEnv, command: string | undefined): HandOver {
  const { FIM_BOOT_REPLAY: path, FIM_BOOT_REPLAY_KEY: key } = env;
  const handOver = { startPlan: env.FIM_BOOT_START_PLAN, holder: env.FIM_BOOT_HOLDER, command, ...(path && key ? { replay: { path, key } } : {}) };
  for (const name of ["FIM_BOOT_START_PLAN", "FIM_BOOT_HOLDER", "FIM_BOOT_REPLAY", "FIM_BOOT_REPLAY_KEY"]) delete env[name];
  return handOver;
}

/** Saves the plan the stub starts the next holder from, for the starts that serve this command too. */
function saveStartPlan(runtime: Runtime, file: string, command: string, plan: HolderPlan): void {
  if (/[\s\0]/.test(command)) return;
  const { image, data, mounts } = runtime.paths;
  const served = readStartPlan(file)?.find(([key]) => key === "commands")?.[1].split(" ").filter(Boolean) ?? [];
  const commands = [...new Set([...served, command])].slice(-16);
  const pairs: [string, string][] = [["commands", commands.join(" ")], ["image", imageIdentity(image)], ["data", data], ["mounts", mounts], ...plan.argv.map((word): [string, string] => ["argv", word])];
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true });
  // What a start killed while saving left (it held the start lock this one holds now).
  const base = file.slice(dir.length + 1);
  for (const name of leftoversOfEnded(dir, new RegExp(`^${base}\\.(\\d+)\\.tmp$`))) rmSync(`${dir}/${name}`, { force: true });
  writeFileSync(`${file}.${process.pid}.tmp`, pairs.map(([key, value]) => `${key}\0${value}\0`).join(""));
  renameSync(`${file}.${process.pid}.tmp`, file);
}

function readRecord(file: string): HolderRecord | undefined {
  try {
    const record = JSON.parse(readFileSync(file, "utf8")) as HolderRecord;
    return record.started === startTime(record.pid) ? record : undefined;
  } catch {
    return undefined;
  }
}

async function lockWithin(fd: number, operation: number, what: string): Promise<void> {
  const deadline = Date.now() + START_WAIT_MS;
  while (!tryLock(fd, operation)) {
    if (Date.now() > deadline) throw new FimError(`Timed out after ${START_WAIT_MS / 1000} s waiting for ${what}`, { level: "C" });
    await Bun.sleep(5);
  }
}

/** What the holder's readiness is read from: its stdout pipe. */
interface Reader {
  read(): Promise<{ value?: Uint8Array; done: boolean }>;
}

/** Reads the holder's first line: "ready", or the end of the pipe (its monitor holds it open too, so only the line counts). */
async function readyLine(reader: Reader): Promise<boolean> {
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return text === "ready\n";
}

/** Waits for the holder's pid 1 once its mounts are ready, or throws what it reported. */
async function holderReady(runtime: Runtime, monitor: number, reader: Reader, exited: () => Promise<number | undefined>): Promise<number> {
  const { mounts, data } = runtime.paths;
  if (!(await readyLine(reader))) {
    const status = await exited();
    const report = readFileSync(`${mounts}/holder.err`, "utf8").trim();
    throw new FimError(report.replace(/^[A-Z]::[^:]*::\d+::/, "") || `The namespace holding the mounts of ${data} ended before it was ready (exit status ${status})`, { level: "C" });
  }
  event("holder ready");
  const [pid] = childrenOf(monitor);
  if (pid === undefined) throw new FimError(`The namespace holding the mounts of ${data} ended at once`, { level: "C" });
  return pid;
}

/** Starts a holder; only the holder of the data directory's lock may. */
function spawnHolder(runtime: Runtime, argv: string[], dataLock: number): Starting {
  runtime.logger("sandbox").debug(`Holder: ['${argv.join("','")}',]`);
  const errors = openSync(`${runtime.paths.mounts}/holder.err`, "w");
  let child: Subprocess<"ignore", "pipe", number>;
  try {
    // Its own session: a terminal's Ctrl-C for the first run must not reach the runs that share it.
    // Not the guest's environment (launch.env): the holder is shared by runs with their own.
    child = Bun.spawn(argv, { stdio: ["ignore", "pipe", errors, dataLock], detached: true, env: process.env });
  } finally {
    closeSync(errors);
  }
  event("holder spawned");
  const ready = holderReady(runtime, child.pid, child.stdout.getReader(), async () => child.exited);
  ready.catch(() => {}); // awaited by finishJoin
  return {
    ready,
    async end() {
      const pid = await ready.catch(() => undefined);
      if (pid !== undefined) process.kill(pid, "SIGKILL");
      await child.exited;
    },
    keep: () => child.unref(),
  };
}

/** The argv of a process (empty once it has ended). */
function commandLine(pid: number): string[] {
  try {
    const words = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    words.pop();
    return words;
  } catch {
    return [];
  }
}

const sameFile = (fd: number, path: string) => {
  try {
    const [opened, named] = [fstatSync(fd), statSync(path)];
    return opened.dev === named.dev && opened.ino === named.ino;
  } catch {
    return false;
  }
};

/**
 * The holder the boot stub started for this run, with its locks, when it handed one over.
 * Bun made the descriptors close-on-exec, as every inherited one.
 */
export function takeHeadStart(runtime: Runtime, handOver: HandOver): HeadStart | undefined {
  const words = handOver.holder?.split(",") ?? [];
  if (words.length !== 5 || !words.every((word) => /^\d+$/.test(word))) return undefined;
  const [pid, readyFd, startLock, guestLock, dataLock] = words.map(Number) as [number, number, number, number, number];
  // The stub forked it before it became this process.
  if (parentOf(pid) !== process.pid) return undefined;
  const reader = Bun.file(readyFd).stream().getReader();
  let status: number | undefined;
  let ended = false;
  // The end of its pipe comes when its monitor ends; then it is reaped (Bun does not know it).
  const exited = async () => {
    if (!ended) {
      ended = true;
      try {
        while (!(await reader.read()).done) {}
      } catch {
        // Not a pipe (a broken hand-over): its monitor is killed (it takes the namespace along).
        process.kill(pid, "SIGKILL");
      }
      status = reap(pid);
      closeFile(readyFd);
    }
    return status;
  };
  const ready = holderReady(runtime, pid, reader, exited);
  ready.catch(() => {}); // awaited by finishJoin
  const starting: Starting = {
    ready,
    async end() {
      const pid1 = await ready.catch(() => undefined);
      if (pid1 !== undefined) process.kill(pid1, "SIGKILL");
      await exited();
    },
    keep() {
      void reader.cancel().catch(() => {});
      closeFile(readyFd); // Bun does not close a descriptor it was given
    },
  };
  return { starting, pid, startLock, guestLock, dataLock };
}

/** Ends a head start that is not for this run's data directory, and gives back its locks. */
async function dropHeadStart(runtime: Runtime, head: HeadStart): Promise<void> {
  runtime.logger("sandbox").debug("The holder started from the last start's plan is for another data directory: ending it");
  await head.starting.end();
  for (const fd of [head.dataLock, head.guestLock, head.startLock]) closeFile(fd);
}

/**
 * Takes the data directory's start lock and finds its holder. When none runs, this run keeps
 * the start lock and the data directory's lock; the boot stub may have taken them already,
 * with the holder it started ahead (`headStart`).
 */
export async function beginJoin(runtime: Runtime, headStart?: HeadStart): Promise<HolderEntry> {
  const { mounts, data } = runtime.paths;
  if (headStart) {
    const { startLock, guestLock, dataLock } = headStart;
    if (sameFile(startLock, `${mounts}/start.lock`) && sameFile(guestLock, `${mounts}/guests.lock`) && sameFile(dataLock, `${data}/.lock`)) {
      return { kind: "free", startLock, guestLock, dataLock, headStart };
    }
    await dropHeadStart(runtime, headStart);
  }
  const startLock = openSync(`${mounts}/start.lock`, "a");
  let kept = false;
  try {
    // One run at a time decides whether to start a holder.
    await lockWithin(startLock, LOCK_EX, `another run on ${data} to start`);
    const guestLock = openSync(`${mounts}/guests.lock`, "a");
    // Blocks only while a holder that has seen its last guest is ending.
    flock(guestLock, LOCK_SH);
    // A live holder keeps the data directory's lock; when we can take it, none lives.
    const dataLock = tryLockDataDirectory(runtime);
    if (dataLock === undefined) {
      const record = readRecord(`${mounts}/holder.json`);
      if (record) return { kind: "running", record, guestLock };
      closeSync(guestLock);
      throw new FimError(`The data directory ${data} is in use (by a commit, or an instance of another build of this image): it must end first, or run this one with another data directory (FIM_DIR_DATA)`, {
        level: "C",
      });
    }
    kept = true;
    return { kind: "free", startLock, guestLock, dataLock };
  } finally {
    if (!kept) closeSync(startLock);
  }
}

const sameArgv = (a: string[], b: string[]) => a.length === b.length && a.every((word, index) => word === b[index]);

/** Joins the holder `beginJoin` found, or the one the stub started if it is the one `plan` needs, or starts it. */
export async function finishJoin(runtime: Runtime, entering: Promise<HolderEntry>, plan: HolderPlan, handOver: HandOver): Promise<Holder> {
  const log = runtime.logger("sandbox");
  const entry = await entering;
  if (entry.kind === "running") {
    if (entry.record.key === plan.key) return { pid: entry.record.pid, guestLock: entry.guestLock, started: false };
    closeSync(entry.guestLock);
    throw new FimError(
      `An instance of this image with another configuration (${entry.record.summary}; this run: ${plan.summary}) is running on ${runtime.paths.data}: ` +
        "it must end before this configuration can be used, or run this one with another data directory (FIM_DIR_DATA)",
      { level: "C" },
    );
  }
  try {
    let starting: Starting | undefined;
    let pid: number | undefined;
    const { headStart } = entry;
    if (headStart) {
      // Its command line is compared once it has one for sure (it is ready).
      pid = await headStart.starting.ready.catch((error) => {
        log.debug(`The holder started from the last start's plan failed: ${(error as Error).message}`);
        return undefined;
      });
      if (pid !== undefined && sameArgv(commandLine(headStart.pid), plan.argv)) {
        log.debug("The holder started from the last start's plan is this run's: kept");
        starting = headStart.starting;
      } else {
        if (pid !== undefined) log.debug("The holder started from the last start's plan is not this run's: ending it");
        await headStart.starting.end();
        pid = undefined;
      }
    }
    if (pid === undefined) {
      starting = spawnHolder(runtime, plan.argv, entry.dataLock);
      pid = await starting.ready;
      const { startPlan, command } = handOver;
      try {
        if (startPlan && command) saveStartPlan(runtime, startPlan, command, plan);
      } catch (error) {
        log.debug(`Could not save the plan of the next start's holder: ${(error as Error).message}`); // it only loses the head start
      }
    }
    starting!.keep();
    const record: HolderRecord = { pid, started: startTime(pid) ?? "", key: plan.key, summary: plan.summary };
    const recordFile = `${runtime.paths.mounts}/holder.json`;
    // Written in place: nobody reads it without the start lock, which we hold (a new file
    // renamed over it cost ~0.45 ms of a start on ext4, 0.05 so). One left half-written by a
    // killed run names no live holder, as an old one would.
    writeFileSync(recordFile, JSON.stringify(record));
    return { pid, guestLock: entry.guestLock, started: true };
  } catch (error) {
    closeSync(entry.guestLock);
    throw error;
  } finally {
    closeSync(entry.dataLock); // the holder keeps its own copy
    closeSync(entry.startLock);
  }
}
