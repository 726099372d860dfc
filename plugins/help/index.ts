// fim-help (reference §4.17, §15.3): every text comes from the commands' own help entries.
import { didYouMean } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import type { Command, HelpUsage, Plugin } from "../../core/plugin.ts";

const NAME = "help";
const PREFIX = "fim-";

export function renderHelp(name: string, summary: string, usages: HelpUsage[]): string {
  const lines = ["Flatimage - Portable Linux Applications", `${name} : ${summary}`];
  for (const block of usages) {
    lines.push(`Usage: ${block.usage}`);
    for (const [arg, description] of block.args ?? []) lines.push(`  ${arg} : ${description}`);
    for (const note of block.notes ?? []) lines.push(`Note: ${note}`);
    for (const example of block.examples ?? []) lines.push(`Example: ${example}`);
  }
  return `${lines.join("\n")}\n`;
}

export const helpPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const topics = () =>
      [...runtime.commands.values()]
        .filter((command) => !command.hidden && command.name.startsWith(PREFIX) && command.name !== "fim-help")
        .sort((a, b) => (a.name < b.name ? -1 : 1));

    const general = (): string => {
      const names = topics().map((command) => command.name.slice(PREFIX.length));
      return renderHelp("fim-help", "See usage details for specified command", [
        {
          usage: "fim-help <cmd>",
          args: [["cmd", "Name of the command to display help details"]],
          notes: [`Available commands: fim-{${names.join(",")}}`],
          examples: ["fim-help bind"],
        },
      ]);
    };

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-help", {
        name: "fim-help",
        brief: true,
        summary: "See usage details for specified command",
        help: [{ usage: "fim-help <cmd>", args: [["cmd", "Name of the command to display help details (also: fim-<cmd> --help)"]], examples: ["fim-help bind"] }],
        parse(args) {
          const [topic] = args; // words after the topic are ignored, as upstream
          // Help that was asked for goes to stdout (`fim-help | less`); upstream wrote this one to stderr.
          if (topic === undefined) return () => write(1, `${general()}\n`);
          // `fim-help fim-perms` is `fim-help perms`; fim-help has a page too (`fim-help --help`).
          const name = topic.startsWith(PREFIX) ? topic : `${PREFIX}${topic}`;
          const command: Command | undefined = name === "fim-help" ? runtime.commands.get(name) : topics().find((candidate) => candidate.name === name);
          if (!command) {
            const names = topics().map((candidate) => candidate.name.slice(PREFIX.length));
            throw new FimError(`Invalid argument for help command: ${topic}${didYouMean(topic.startsWith(PREFIX) ? topic.slice(PREFIX.length) : topic, names)}`, { level: "C" });
          }
          return () => write(1, renderHelp(command.name, command.summary, command.help));
        },
      }),
    );
  },
};
