// The script run as pid 1 of the run's private namespaces: it runs the planned steps
// (FUSE mounts), then starts the sandbox and forwards signals to the guest.

/** Quotes a word for bash. */
export function quote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
}

const line = (argv: string[]) => argv.map(quote).join(" ");

export interface StageScript {
  steps: string[][];
  /** The sandbox command (bwrap …). */
  sandbox: string[];
  /** File that bwrap's --json-status-fd writes to: it holds the guest's pid. */
  status: string;
  /** File that the steps' output goes to. */
  log: string;
}

/** Signals forwarded to the guest. */
export const FORWARDED = ["TERM", "HUP", "INT", "QUIT", "USR1", "USR2"] as const;
/** On a terminal these reach the guest directly (same process group): forwarding would double them. */
const TERMINAL_SIGNALS = ["INT", "QUIT"];

export function stageScript({ steps, sandbox, status, log }: StageScript): string {
  return [
    "set -e",
    ...steps.map((step) => `${line(step)} >>${quote(log)} 2>&1 </dev/null`),
    "set +e",
    `forward() { local s; s=$(<${quote(status)}) 2>/dev/null; [[ $s =~ \\"child-pid\\":\\ *([0-9]+) ]] && kill -s "$1" "\${BASH_REMATCH[1]}" 2>/dev/null; }`,
    ...FORWARDED.filter((signal) => !TERMINAL_SIGNALS.includes(signal)).map((signal) => `trap 'forward ${signal}' ${signal}`),
    `if [ -t 0 ]; then trap '' ${TERMINAL_SIGNALS.join(" ")}; else ${TERMINAL_SIGNALS.map((signal) => `trap 'forward ${signal}' ${signal};`).join(" ")} fi`,
    // `<&0`: a background job's stdin would otherwise be /dev/null.
    `${line(sandbox)} 3>${quote(status)} <&0 &`,
    "sandbox=$!",
    // A trapped signal interrupts `wait`: wait again until the sandbox has really ended.
    'while :; do wait "$sandbox"; code=$?; kill -0 "$sandbox" 2>/dev/null || break; done',
    'exit "$code"',
  ].join("\n");
}
