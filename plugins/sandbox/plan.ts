// The plan given to fim_supervise (toolset/src/fim_supervise.c) as counted argv records:
// binary-safe, nothing parsed by a shell.
import type { AfterStep, PrepareStep } from "../../core/launch.ts";

export interface SupervisorPlan {
  log?: string;
  status?: string;
  /** The status file names bwrap's init (--unshare-pid): signals go to its child. */
  statusInit?: boolean;
  /** Adopt the child's orphans and end them when it ends. */
  endOrphans?: boolean;
  /** Run as pid 1 of a user, mount and pid namespace of its own, as root there (the namespace holder). */
  namespace?: boolean;
  close?: number[];
  open?: [number, string][];
  /** Directories emptied (or made) before the steps. */
  fresh?: string[];
  steps?: PrepareStep[];
  companions?: string[][];
  after?: AfterStep[];
  child?: string[];
  /** The last guest of a shared namespace waits for its holder (pid) to end: [our shared lock's fd, pid]. */
  linger?: [number, number];
  /** Once every step is ready, write "ready" on this descriptor and close it. */
  notify?: number;
  /** Wait for an exclusive lock on this file (runs sharing the namespace hold it shared) before ending. */
  hold?: string;
  tag?: string;
}

const record = (option: string, words: string[]) => [option, String(words.length), ...words];

export function supervisorArgs(supervisor: string, plan: SupervisorPlan): string[] {
  const args = [supervisor];
  if (plan.tag) args.push("--tag", plan.tag);
  if (plan.log) args.push("--log", plan.log);
  if (plan.status) args.push("--status", plan.status);
  if (plan.statusInit) args.push("--status-init");
  if (plan.endOrphans) args.push("--end-orphans");
  if (plan.namespace) args.push("--namespace");
  for (const fd of plan.close ?? []) args.push("--close", String(fd));
  for (const [fd, path] of plan.open ?? []) args.push("--open", String(fd), path);
  if (plan.fresh) args.push(...record("--fresh", plan.fresh));
  for (const step of plan.steps ?? []) {
    if (step.kind === "run") args.push(...record("--step", step.argv));
    else if (step.kind === "ready") args.push(...record("--ready", step.argv));
    else if (step.kind === "mount") args.push(...record("--mount", [step.type, step.source, step.options, step.target]));
    else args.push(...record("--mounted", step.dirs));
  }
  for (const companion of plan.companions ?? []) args.push(...record("--companion", companion));
  for (const step of plan.after ?? []) args.push(...(step.kind === "run" ? record("--after", step.argv) : record("--remove", step.paths)));
  if (plan.linger) args.push("--linger", String(plan.linger[0]), String(plan.linger[1]));
  if (plan.notify !== undefined) args.push("--notify", String(plan.notify));
  if (plan.hold) args.push("--hold", plan.hold);
  if (plan.child) args.push(...record("--child", plan.child));
  return args;
}
