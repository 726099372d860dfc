// The namespace holder of a data directory: one private user+pid+mount namespace where the
// layers and the writable root are mounted once, shared by every run on that directory.
// The first run starts it (detached, so it outlives that run if others use it); every run,
// the first included, enters it and starts its own guest sandbox there. Each run holds a
// shared lock on `guests.lock` for as long as it lives; the holder waits for an exclusive
// one, so it ends with its last guest, and a process killed in any way releases its lock.
import { closeSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { FimError } from "../../core/errors.ts";
import type { Launch } from "../../core/launch.ts";
import { flock, LOCK_SH, tryLock, LOCK_EX } from "../../core/libc.ts";
import { childrenOf, startTime } from "../../core/proc.ts";
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

export interface Holder {
  /** Host PID of the holder's pid 1 (fim_supervise): `fim_enter --join` enters its namespaces. */
  pid: number;
  /** Descriptor of this run's shared lock, to be kept by its supervisor. */
  guestLock: number;
  /** Whether this run started it. */
  started: boolean;
}

const START_WAIT_MS = 30_000;

function configuration(launch: Launch): { key: string; summary: string } {
  const key = new Bun.CryptoHasher("sha256").update(JSON.stringify({ steps: launch.steps, root: launch.root })).digest("hex");
  const { overlay, casefold } = launch.facts;
  return { key, summary: `overlay ${overlay}, casefold ${casefold ? "on" : "off"}, ${launch.lowerDirs.length} lower layer(s)` };
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

/** Starts the holder with the run's steps; resolves once every mount is ready. */
async function start(runtime: Runtime, launch: Launch, dataLock: number): Promise<number> {
  const { mounts } = runtime.paths;
  const [bwrap, supervise] = await Promise.all([runtime.tool("bwrap"), runtime.tool("fim_supervise")]);
  const work = workDirectory(runtime);
  resetWorkDirectory(work);
  const log = `${mounts}/holder.log`;
  const inside = supervisorArgs(supervise, {
    log,
    // fd 3: the data directory's lock, held by the holder for as long as it lives.
    close: [3],
    steps: launch.steps,
    notify: 1,
    // `work` is <data>/work/holder, and nothing else lives in <data>/work.
    after: [{ kind: "remove", paths: [`${runtime.paths.data}/work`] }],
    hold: `${mounts}/guests.lock`,
  });
  const holder = [bwrap, "--unshare-user", "--unshare-pid", "--as-pid-1", "--uid", "0", "--gid", "0", "--cap-add", "ALL", "--dev-bind", "/", "/", "--proc", "/proc", "--", ...inside];
  runtime.logger("sandbox").debug(`Holder: ['${holder.join("','")}',]`);
  const errors = openSync(`${mounts}/holder.err`, "w");
  // Its own session: a terminal's Ctrl-C for the first run must not reach the runs that share it.
  // Not the guest's environment (launch.env): the holder is shared by runs with their own.
  const child = Bun.spawn(holder, { stdio: ["ignore", "pipe", errors, dataLock], detached: true, env: process.env });
  closeSync(errors);
  // "ready", or the end of the pipe: its monitor (bwrap) holds it open too, so only the line counts.
  if (!(await readyLine(child.stdout))) {
    await child.exited;
    const report = readFileSync(`${mounts}/holder.err`, "utf8").trim();
    throw new FimError(report.replace(/^[A-Z]::[^:]*::\d+::/, "") || `The namespace holding the mounts of ${runtime.paths.data} ended before it was ready (exit status ${child.exitCode})`, { level: "C" });
  }
  child.unref();
  const [pid] = childrenOf(child.pid);
  if (pid === undefined) throw new FimError(`The namespace holding the mounts of ${runtime.paths.data} ended at once`, { level: "C" });
  return pid;
}

/** Joins the data directory's holder, starting it first when none runs. */
export async function joinHolder(runtime: Runtime, launch: Launch): Promise<Holder> {
  const { mounts, data } = runtime.paths;
  const { key, summary } = configuration(launch);
  const startLock = openSync(`${mounts}/start.lock`, "a");
  try {
    // One run at a time decides whether to start a holder.
    await lockWithin(startLock, LOCK_EX, `another run on ${data} to start`);
    const guestLock = openSync(`${mounts}/guests.lock`, "a");
    // Blocks only while a holder that has seen its last guest is ending.
    flock(guestLock, LOCK_SH);
    const recordFile = `${mounts}/holder.json`;
    // A live holder keeps the data directory's lock; when we can take it, none lives (one
    // that has just seen its last guest may still be a zombie: its record cannot tell).
    const dataLock = tryLockDataDirectory(runtime);
    if (dataLock === undefined) {
      const running = readRecord(recordFile);
      if (!running) {
        closeSync(guestLock);
        throw new FimError(`The data directory ${data} is in use (by a commit, or an instance of another build of this image): it must end first, or run this one with another data directory (FIM_DIR_DATA)`, {
          level: "C",
        });
      }
      if (running.key !== key) {
        closeSync(guestLock);
        throw new FimError(
          `An instance of this image with another configuration (${running.summary}; this run: ${summary}) is running on ${data}: ` +
            "it must end before this configuration can be used, or run this one with another data directory (FIM_DIR_DATA)",
          { level: "C" },
        );
      }
      return { pid: running.pid, guestLock, started: false };
    }
    try {
      const pid = await start(runtime, launch, dataLock);
      const record: HolderRecord = { pid, started: startTime(pid) ?? "", key, summary };
      writeFileSync(`${recordFile}.tmp`, JSON.stringify(record));
      renameSync(`${recordFile}.tmp`, recordFile);
      return { pid, guestLock, started: true };
    } catch (error) {
      closeSync(guestLock);
      throw error;
    } finally {
      closeSync(dataLock); // the holder keeps its own copy
    }
  } finally {
    closeSync(startLock);
  }
}
