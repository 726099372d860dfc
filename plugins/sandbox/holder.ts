// The namespace holder of a data directory: one private user+pid+mount namespace where the
// layers and the writable root are mounted once, shared by every run on that directory.
// The first run starts it (detached, so it outlives that run if others use it); every run,
// the first included, enters it and starts its own guest sandbox there. Each run holds a
// shared lock on `guests.lock` for as long as it lives; the holder waits for an exclusive
// one, so it ends with its last guest, and a process killed in any way releases its lock.
//
// Mounting takes about as long as planning the run, so a start does both at once: as soon as
// the run begins, before its facts are known, it starts the holder the last start on this
// data directory started (its plan is saved in the mounts directory, private to the user).
// When the run's own plan turns out to be the same, that holder is kept; otherwise it is
// ended (nobody can have joined it: the start lock is held until then) and the run's own is
// started.
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from "../../lib/fs.ts";
import type { Subprocess } from "bun";
import { FimError } from "../../core/errors.ts";
import type { Launch } from "../../core/launch.ts";
import { flock, LOCK_SH, tryLock, LOCK_EX } from "../../core/libc.ts";
import { childrenOf, leftoversOfEnded, startTime } from "../../core/proc.ts";
import { event } from "../../core/profile.ts";
import { resetWorkDirectory, tryLockDataDirectory, workDirectory } from "../../core/run-services.ts";
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

/** A holder started by this run, not yet ready. */
interface Starting {
  argv: string[];
  child: Subprocess<"ignore", "pipe", number>;
  /** The host PID of its pid 1 once every mount is ready. */
  ready: Promise<number>;
}

/** Where a run stands once it has the start lock: a holder runs, or this run must start one. */
export type HolderEntry =
  | { kind: "running"; record: HolderRecord; guestLock: number }
  | { kind: "free"; startLock: number; guestLock: number; dataLock: number; starting?: Starting };

const START_WAIT_MS = 30_000;

const planFile = (runtime: Runtime) => `${runtime.paths.mounts}/holder.plan`;

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

/** The plan of the last start on this data directory, when there is one. */
export function savedPlan(runtime: Runtime): HolderPlan | undefined {
  try {
    const plan = JSON.parse(readFileSync(planFile(runtime), "utf8")) as HolderPlan;
    const valid = typeof plan.key === "string" && typeof plan.summary === "string" && Array.isArray(plan.argv) && plan.argv.every((word) => typeof word === "string");
    return valid && plan.argv.length > 0 ? plan : undefined;
  } catch {
    return undefined;
  }
}

function savePlan(runtime: Runtime, plan: HolderPlan): void {
  const file = planFile(runtime);
  // What a start killed while saving left (it held the start lock this one holds now).
  for (const name of leftoversOfEnded(runtime.paths.mounts, /^holder\.plan\.(\d+)\.tmp$/)) rmSync(`${runtime.paths.mounts}/${name}`, { force: true });
  writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(plan));
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

async function readyLine(stream: ReadableStream<Uint8Array>): Promise<boolean> {
  const reader = stream.getReader();
  let text = "";
  try {
    while (!text.includes("\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
  } finally {
    reader.releaseLock();
  }
  return text === "ready\n";
}

/** Starts a holder; only the holder of the data directory's lock may. */
function spawnHolder(runtime: Runtime, argv: string[], dataLock: number): Starting {
  const { mounts, data } = runtime.paths;
  resetWorkDirectory(workDirectory(runtime));
  runtime.logger("sandbox").debug(`Holder: ['${argv.join("','")}',]`);
  const errors = openSync(`${mounts}/holder.err`, "w");
  let child: Subprocess<"ignore", "pipe", number>;
  try {
    // Its own session: a terminal's Ctrl-C for the first run must not reach the runs that share it.
    // Not the guest's environment (launch.env): the holder is shared by runs with their own.
    child = Bun.spawn(argv, { stdio: ["ignore", "pipe", errors, dataLock], detached: true, env: process.env });
  } finally {
    closeSync(errors);
  }
  event("holder spawned");
  const ready = (async () => {
    // "ready", or the end of the pipe: its monitor holds it open too, so only the line counts.
    if (!(await readyLine(child.stdout))) {
      await child.exited;
      const report = readFileSync(`${mounts}/holder.err`, "utf8").trim();
      throw new FimError(report.replace(/^[A-Z]::[^:]*::\d+::/, "") || `The namespace holding the mounts of ${data} ended before it was ready (exit status ${child.exitCode})`, { level: "C" });
    }
    event("holder ready");
    const [pid] = childrenOf(child.pid);
    if (pid === undefined) throw new FimError(`The namespace holding the mounts of ${data} ended at once`, { level: "C" });
    return pid;
  })();
  ready.catch(() => {}); // awaited by finishJoin
  return { argv, child, ready };
}

/** Ends a holder nobody joined: its pid 1's end takes every process and mount of it along. */
async function endHolder(starting: Starting): Promise<void> {
  const pid = await starting.ready.catch(() => undefined);
  if (pid !== undefined) process.kill(pid, "SIGKILL");
  await starting.child.exited;
}

/**
 * Takes the data directory's start lock and finds its holder. When none runs, this run keeps
 * the start lock and the data directory's lock, and starts the holder of `guess` at once.
 */
export async function beginJoin(runtime: Runtime, guess?: HolderPlan): Promise<HolderEntry> {
  const { mounts, data } = runtime.paths;
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
    let starting: Starting | undefined;
    try {
      // Its tools have not been checked yet in this run (one cut short by a crash is extracted
      // again when the run looks it up): one that cannot start only costs the head start.
      if (guess) starting = spawnHolder(runtime, guess.argv, dataLock);
    } catch (error) {
      runtime.logger("sandbox").debug(`Could not start the holder of the last start's plan: ${(error as Error).message}`);
    }
    return { kind: "free", startLock, guestLock, dataLock, starting };
  } finally {
    if (!kept) closeSync(startLock);
  }
}

const sameArgv = (a: string[], b: string[]) => a.length === b.length && a.every((word, index) => word === b[index]);

/** Joins the holder `beginJoin` found, or the one it started if it is the one `plan` needs. */
export async function finishJoin(runtime: Runtime, entering: Promise<HolderEntry>, plan: HolderPlan): Promise<Holder> {
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
    let { starting } = entry;
    let pid: number | undefined;
    let reused = false;
    if (starting && !sameArgv(starting.argv, plan.argv)) {
      log.debug("The holder started from the last start's plan is not this run's: ending it");
      await endHolder(starting);
      starting = undefined;
    }
    if (starting) {
      // The same command line: only what the run repairs before it gets here (a mount point
      // removed, a tool cut short) can make it fail, and then it is started again.
      pid = await starting.ready.catch((error) => {
        log.debug(`The holder started from the last start's plan failed: ${(error as Error).message}`);
        return undefined;
      });
      reused = pid !== undefined;
      if (reused) log.debug("The holder started from the last start's plan is this run's: kept");
    }
    if (pid === undefined) {
      starting = spawnHolder(runtime, plan.argv, entry.dataLock);
      pid = await starting.ready;
    }
    starting!.child.unref();
    const record: HolderRecord = { pid, started: startTime(pid) ?? "", key: plan.key, summary: plan.summary };
    const recordFile = `${runtime.paths.mounts}/holder.json`;
    writeFileSync(`${recordFile}.tmp`, JSON.stringify(record));
    renameSync(`${recordFile}.tmp`, recordFile);
    if (!reused) savePlan(runtime, plan);
    return { pid, guestLock: entry.guestLock, started: true };
  } catch (error) {
    closeSync(entry.guestLock);
    throw error;
  } finally {
    closeSync(entry.dataLock); // the holder keeps its own copy
    closeSync(entry.startLock);
  }
}
