// Diagnostics in FlatImage's line format (reference §2): `<L>::<tag>::<pid>::<message>`.
// D and I go to stdout, W/E/C to stderr. (Upstream also appends every line to a per-instance
// boot.log; instance directories here live only as long as their run, so there is none.)
import { writeAll } from "../lib/fs.ts";
import type { ConsolaInstance, ConsolaReporter, LogObject } from "consola/core";
import type { Level } from "./errors.ts";

const RANK: Record<Level, number> = { D: 0, I: 1, W: 2, E: 3, C: 4 };
const LEVEL_OF_TYPE: Record<string, Level> = {
  debug: "D", trace: "D", verbose: "D",
  info: "I", log: "I", success: "I", start: "I", ready: "I", box: "I",
  warn: "W", error: "E", fail: "E", fatal: "C",
};
const TYPE_OF_LEVEL: Record<Level, "debug" | "info" | "warn" | "error" | "fatal"> = {
  D: "debug", I: "info", W: "warn", E: "error", C: "fatal",
};

let threshold: Level = "I";

/** Console threshold: lines below it are not printed. */
export function setConsoleLevel(level: Level): void {
  threshold = level;
}

export function consoleLevel(): Level {
  return threshold;
}

/** Writes to a standard stream; a closed pipe (e.g. `| head`) is not an error worth dying for. */
export function write(fd: 1 | 2, text: string): void {
  try {
    writeAll(fd, text);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPIPE") throw error;
  }
}

export function formatLine(level: Level, tag: string, message: string): string {
  return `${level}::${tag}::${process.pid}::${message.replace(/\n/g, "")}\n`;
}

/** A printed line, kept for the boot stub to print again when it replays the run (plugins/sandbox/replay.ts). */
export interface PrintedLine {
  level: Level;
  tag: string;
  message: string;
}

let transcript: PrintedLine[] | undefined;

/** Keeps every line printed from now on (the returned array fills as they are). */
export function keepTranscript(): PrintedLine[] {
  return (transcript = []);
}

const reporter: ConsolaReporter = {
  log(entry: LogObject) {
    const level = LEVEL_OF_TYPE[entry.type] ?? "I";
    if (RANK[level] < RANK[threshold]) return;
    const tag = entry.tag || "fim";
    const message = entry.args.map(String).join(" ").replace(/\n/g, "");
    transcript?.push({ level, tag, message });
    write(level === "D" || level === "I" ? 1 : 2, formatLine(level, tag, message));
  },
};

// Made on first use, consola's module loaded then too: a start that logs nothing (most
// commands) does not pay for either.
let consola: ConsolaInstance | undefined;
function instance(): ConsolaInstance {
  if (!consola) {
    const { createConsola } = require("consola/core") as typeof import("consola/core");
    consola = createConsola({ level: 5, reporters: [reporter], throttle: 0 });
  }
  return consola;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  critical(message: string): void;
  at(level: Level, message: string): void;
}

/**
 * A logger whose lines carry `tag` (the plugin or module name) in the middle of the line.
 * The tagged consola instance is made for the first line printed: a line below the threshold
 * goes nowhere, and making consola instances for them was ~2 ms of every run.
 */
export function logger(tag: string): Logger {
  let tagged: ConsolaInstance | undefined;
  const at = (level: Level, message: string) => {
    if (RANK[level] >= RANK[threshold]) (tagged ??= instance().withTag(tag))[TYPE_OF_LEVEL[level]](message);
  };
  return {
    debug: (m) => at("D", m),
    info: (m) => at("I", m),
    warn: (m) => at("W", m),
    error: (m) => at("E", m),
    critical: (m) => at("C", m),
    at,
  };
}
