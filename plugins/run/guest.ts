// The program a run starts (reference §9.1). Upstream's launcher runs `"<program>" "$@"` in
// bash, so a shell builtin works as the program: `fim-exec command -v jq`, `fim-exec type ls`,
// and `echo`, `test`, `kill` are bash's own. The sandbox here execs the program directly (it
// becomes the supervised process), so a builtin is run by the bash that starts the guest.

/** bash 5.2's builtins (`compgen -b` of the tool set's bash). Keywords do not count: upstream quotes the word. */
const BUILTINS = new Set(
  ". : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait".split(" "),
);

export interface GuestCommand {
  program: string;
  args: string[];
  builtin: boolean;
}

/** `program args…` as the sandbox should start it: a builtin is run by the guest's shell. */
export function guestCommand(program: string, args: string[]): GuestCommand {
  return { program, args, builtin: BUILTINS.has(program) };
}
