// The two bash scripts of a run: the supervisor on the host (it replaces the launcher
// process, so the image file is not executed while the guest runs) and the namespace's
// pid 1. Both run a child in the background, forward signals to the process named in the
// child's bwrap --json-status-fd file, wait for it, and exit with its status.

/** Quotes a word for bash. */
export function quote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

export const commandLine = (argv: string[]) => argv.map(quote).join(" ");

/** Signals forwarded to the guest. */
const FORWARDED = ["TERM", "HUP", "USR1", "USR2"] as const;
/** On a terminal these reach every process directly (one process group): forwarding would double them. */
const TERMINAL_SIGNALS = ["INT", "QUIT"];

export interface Supervised {
  /** Commands run first, in order; any failure ends the script with its status. */
  before?: string[][];
  /** Where the output of `before` goes. */
  log?: string;
  /** The child: a bwrap command that writes its --json-status-fd to fd 3. */
  child: string[];
  /** The file fd 3 is redirected to. */
  status: string;
  /** Commands run after the child, whatever happened to it. */
  after?: string[][];
  /** Descriptors the child must not inherit. */
  close?: number[];
  /** Commands started in the background just before the child. */
  companions?: string[][];
}

export function superviseScript({ before = [], log = "/dev/null", child, status, after = [], close = [], companions = [] }: Supervised): string {
  return [
    "set -e",
    ...before.map(
      (step) =>
        `${commandLine(step)} >>${quote(log)} 2>&1 </dev/null || { printf 'C::sandbox::%s::%s\\n%s\\n' "$$" ${quote(`Could not prepare the sandbox: '${step.join(" ")}' failed; its output:`)} "$(<${quote(log)})" >&2; exit 125; }`,
    ),
    "set +e",
    `forward() { local s; s=$(<${quote(status)}) 2>/dev/null; [[ $s =~ \\"child-pid\\":\\ *([0-9]+) ]] && kill -s "$1" "\${BASH_REMATCH[1]}" 2>/dev/null; }`,
    ...FORWARDED.map((signal) => `trap 'forward ${signal}' ${signal}`),
    `if [ -t 0 ]; then trap '' ${TERMINAL_SIGNALS.join(" ")}; else ${TERMINAL_SIGNALS.map((signal) => `trap 'forward ${signal}' ${signal};`).join(" ")} fi`,
    // `<&0`: a background job's stdin would otherwise be /dev/null. A background job of a
    // non-interactive shell ignores SIGINT/SIGQUIT: a terminal's Ctrl-C cannot kill bwrap.
    ...companions.map((command) => `${commandLine(command)} </dev/null >/dev/null 2>&1 ${close.map((fd) => `${fd}>&-`).join(" ")} &`),
    `${commandLine(child)} 3>${quote(status)} <&0 ${close.map((fd) => `${fd}>&-`).join(" ")} &`,
    "child=$!",
    // A trapped signal interrupts `wait`: wait again until the child has really ended.
    'while :; do wait "$child"; code=$?; kill -0 "$child" 2>/dev/null || break; done',
    ...after.map((step) => `${commandLine(step)} >/dev/null 2>&1`),
    'exit "$code"',
  ].join("\n");
}
