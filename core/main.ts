// The program's flow: apply the bundle's plugins, relocate, parse, dispatch, and turn any
// error into FlatImage's trace and exit code 125 (reference §2.3).
import { asFimError, FimError } from "./errors.ts";
import { logger, setConsoleLevel } from "./log.ts";
import { computePaths, exportEnvironment } from "./paths.ts";
import { mark, printProfile } from "./profile.ts";
import type { Bundle, Command } from "./plugin.ts";
import { Runtime } from "./runtime.ts";

const log = logger("boot");

function report(error: FimError): void {
  for (const link of error.chain) logger(link.tag).at(link.level, link.message);
  log.critical("The program exited with an error");
}

export async function main(bundle: Bundle, argv: string[] = process.argv.slice(2)): Promise<never> {
  // Before anything: the console level depends only on FIM_DEBUG (refined after parsing).
  const debug = process.env.FIM_DEBUG === "1";
  setConsoleLevel(debug ? "D" : "I");
  let code: number;
  mark("load");
  try {
    const runtime = new Runtime(bundle);
    mark("plugins");
    // Resolved once, before relocation (which is told the command); a failure is reported
    // after it, so that an unusable image is reported first.
    let resolved: { command: Command; args: string[] } | undefined;
    let unresolved: unknown;
    try {
      const invocation = await runtime.hooks.parse.promise(argv);
      const command = invocation && runtime.commands.get(invocation.command);
      if (!invocation || !command) throw new FimError("Invalid fim command", { level: "C" });
      resolved = { command, args: invocation.args };
    } catch (error) {
      unresolved = error;
    }
    const image = await runtime.hooks.relocate.promise({ argv, command: resolved?.command, args: resolved?.args ?? [] });
    if (image === undefined) throw new FimError("Path to self is not defined", { level: "C" });
    mark("relocate");
    const paths = computePaths(image);
    exportEnvironment(image, paths);
    runtime.attach(image, paths);

    let action;
    try {
      if (!resolved) throw unresolved;
      setConsoleLevel(debug ? "D" : resolved.command.consoleLevel ?? "I");
      action = resolved.command.parse(resolved.args, runtime);
    } catch (error) {
      throw asFimError(error).context("Could not parse arguments", "C");
    }
    mark("parse");
    code = (await action()) ?? 0;
    mark("command");
  } catch (error) {
    const fimError = asFimError(error);
    if (!(error instanceof FimError) && error instanceof Error && process.env.FIM_DEBUG === "1") log.debug(error.stack ?? "");
    report(fimError);
    code = fimError.exitCode;
  }
  printProfile();
  process.exit(code);
}
