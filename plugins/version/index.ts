// fim-version (reference §15.1–§15.2): build metadata from the image header.
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { readDeps } from "../../core/image.ts";
import { dumpJson } from "../../core/json.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";

const NAME = "version";

export const versionPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-version", {
        name: "fim-version",
        brief: true,
        summary: "Displays version information of FlatImage",
        help: [
          {
            usage: "fim-version <short|full|deps>",
            args: [["short", "Displays the version as a string"], ["full", "Displays the version and build information in json"], ["deps", "Displays dependency information in json"]],
          },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-version' (<short|full|deps>)", { level: "C" });
          const op = parseWord(opWord, ["short", "full", "deps"] as const, "Invalid version operation");
          if (op === "NONE") throw new FimError("Invalid operation for fim-version", { level: "C" });
          rejectTrailing("fim-version", rest);
          const { header } = runtime.image;
          if (op === "short") return () => write(1, `${header.version}\n`);
          if (op === "full") {
            return () =>
              withContext("Failed to dump full version info", () =>
                write(1, `${dumpJson({ COMMIT: header.commit, DISTRIBUTION: header.distribution, TIMESTAMP: header.timestamp, VERSION: header.version })}\n`),
              );
          }
          return () =>
            withContext("Failed to dump dependencies info", () => {
              const deps = readDeps(runtime.image);
              const shas = new Map([
                ["fim_stub", header.stub.sha256],
                ...header.boot.parts.map((part): [string, string] => [part.path.slice(part.path.indexOf("/") + 1), part.sha256]),
                ...header.tools.map((tool): [string, string] => [tool.name, tool.sha256]),
              ]);
              const table = Object.fromEntries(Object.entries(deps).map(([name, dep]) => [name, { ...dep, sha: shas.get(name) ?? "" }]));
              write(1, `${dumpJson(table)}\n`);
            });
        },
      }),
    );
  },
};
