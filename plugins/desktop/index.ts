// fim-desktop (reference §4.15, §13) and the automatic integration on every sandboxed run.
import { extname, resolve } from "../../lib/path.ts";
import { parseWord, rejectTrailing, splitRange } from "../../core/cli.ts";
import { asFimError, FimError, withContext } from "../../core/errors.ts";
import { consoleLevel, write } from "../../core/log.ts";
import { AsyncSeriesHook, hooksOf } from "../../core/hooks.ts";
import { PREPARE_STAGE } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { readJson, readText, SLOTS, updateJson } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { entryText, mimeText, writeAtomic } from "./files.ts";
import { readIcon } from "./icon.ts";
import { canonicalItems, type Desktop, ITEMS, type Item, StoredSchema, storedForm } from "./schema.ts";
import { parseSetup, parseSetupFile, setupDesktop } from "./setup.ts";

export { parseSetup, setupDesktop };

const NAME = "desktop";
const OPS = ["enable", "setup", "clean", "dump"] as const;
const ENABLE_ITEMS = ["entry", "mimetype", "icon"] as const;
const DUMP_KINDS = ["entry", "mimetype", "icon"] as const;

const emptyJson = () => new FimError("Empty json data", { level: "W" });

/** The stored desktop configuration, or undefined when none is stored. */
/** The hooks this plugin publishes: `integrated` once a run has integrated the application. */
export const desktopHooks = hooksOf(() => ({ integrated: new AsyncSeriesHook<[{ name: string; icon: string }]>(["app"]) }));

function readDesktop(runtime: Runtime): Desktop | undefined {
  const stored = readJson(runtime.image, SLOTS.desktop, StoredSchema());
  if (!stored) return undefined;
  let integrations: Item[];
  try {
    integrations = canonicalItems(stored.integrations);
  } catch (error) {
    throw new FimError(`Corrupt desktop data in the reserved space of '${runtime.image.path}': integrations: ${(error as Error).message}`);
  }
  return { name: stored.name, categories: stored.categories, integrations };
}

function requireDesktop(runtime: Runtime): Desktop {
  const desktop = readDesktop(runtime);
  if (!desktop) throw emptyJson();
  return desktop;
}

/** §13.3, before the host checks: never aborts the run; its trace is W level (shown at INFO or in debug). */
async function autoIntegrate(runtime: Runtime): Promise<void> {
  const log = runtime.logger(NAME);
  const shown = ["D", "I", "W"].includes(consoleLevel());
  let stage = "Missing or misconfigured desktop integration";
  try {
    // The cheap part every run pays: one read of the 4 KiB slot.
    if (readText(runtime.image, SLOTS.desktop) === "") {
      // Only when shown: a run that logs nothing does not start the logger.
      if (shown) for (const line of ["Empty json data", stage, "Could not perform desktop integration"]) log.warn(line);
      return;
    }
    const desktop = requireDesktop(runtime);
    stage = "";
    const { integrate, appIcon } = await import("./integrate.ts");
    await integrate(runtime, desktop, log);
    await desktopHooks(runtime).integrated.promise({ name: desktop.name, icon: appIcon(desktop) });
  } catch (error) {
    if (!shown) return;
    for (const link of asFimError(error).chain) log.warn(link.message);
    if (stage) log.warn(stage);
    log.warn("Could not perform desktop integration");
  }
}

export const desktopPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);

    // Before the sandbox's host checks, as upstream integrates before mounting.
    runtime.hooks.prepare.tapPromise({ name: NAME, stage: PREPARE_STAGE.integration }, () => autoIntegrate(runtime));

    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-desktop", {
        name: "fim-desktop",
        summary: "Configure the desktop integration",
        help: [
          { usage: "fim-desktop <setup> <json-file>", args: [["setup", "Sets up the desktop integration with an input json file"], ["json-file", "Path to the json file with the desktop configuration"]] },
          { usage: "fim-desktop <enable> [entry,mimetype,icon,none]", args: [["enable", "Enables the desktop integration selectively"], ["entry", "Enable the start menu desktop entry"], ["mimetype", "Enable the mimetype"], ["icon", "Enable the icon for the file manager and desktop entry"], ["none", "Disable desktop integrations"]] },
          { usage: "fim-desktop <clean>", args: [["clean", "Cleans the desktop integration files from XDG_DATA_HOME"]] },
          { usage: "fim-desktop <dump> <icon> <file>", args: [["dump", "Dumps the selected integration data"], ["icon", "Dumps the desktop icon to a file"], ["file", "Path to the output file"]] },
          { usage: "fim-desktop <dump> <entry|mimetype>", args: [["entry", "Dumps the desktop entry"], ["mimetype", "Dumps the mimetype configuration file"]] },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError("Missing op for 'fim-desktop' (enable,setup,clean,dump)", { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid desktop operation");
          if (op === "NONE") throw new FimError("Invalid desktop operation", { level: "C" });

          if (op === "setup") {
            const [file, ...trailing] = rest;
            if (file === undefined) throw new FimError("Missing argument for 'setup' (/path/to/file.json)", { level: "C" });
            rejectTrailing("fim-desktop", trailing);
            return () => withContext("Failed to setup desktop integration", () => setupDesktop(runtime, parseSetupFile(file)));
          }

          if (op === "enable") {
            const [list, ...trailing] = rest;
            if (list === undefined) throw new FimError("Missing arguments for 'enable' (entry,mimetype,icon,none)", { level: "C" });
            const words = splitRange(list).map((word) => parseWord(word, ENABLE_ITEMS, "Invalid integration item").toUpperCase() as Item);
            const chosen = new Set(words);
            if (chosen.has("NONE") && chosen.size > 1) throw new FimError("'none' option should not be used with others", { level: "C" });
            rejectTrailing("fim-desktop", trailing);
            const items = ITEMS.filter((item) => chosen.has(item));
            return () =>
              withContext("Failed to enable desktop integration", () => {
                updateJson(runtime.image, SLOTS.desktop, StoredSchema(), (stored) => {
                  if (!stored) throw emptyJson();
                  return storedForm({ name: stored.name, categories: stored.categories, integrations: items });
                });
                for (const item of items) write(1, `${item}\n`);
              });
          }

          if (op === "clean") {
            rejectTrailing("fim-desktop", rest);
            return async () => {
              let desktop: Desktop;
              try {
                desktop = requireDesktop(runtime);
              } catch (error) {
                throw asFimError(error).context("Failed to de-serialize desktop integration");
              }
              await withContext("Failed to clean desktop integration", async () => {
                const { clean } = await import("./integrate.ts");
                await clean(runtime, desktop, log);
              });
            };
          }

          const [kindWord, ...more] = rest;
          if (kindWord === undefined) throw new FimError("Missing arguments for 'dump' (entry,mimetype,icon)", { level: "C" });
          const kind = parseWord(kindWord, DUMP_KINDS, "Invalid dump operation");
          if (kind === "NONE") throw new FimError("Invalid desktop dump operation", { level: "C" });
          if (kind === "icon") {
            const [path, ...trailing] = more;
            if (path === undefined) throw new FimError("Missing argument for 'icon' /path/to/dump/file", { level: "C" });
            rejectTrailing("fim-desktop", trailing);
            return () =>
              withContext("Failed to dump desktop icon", () => {
                const icon = readIcon(runtime.image);
                if (!icon) throw new FimError("Empty icon data");
                // jpg is dumped too (upstream refused it: a quirk nobody can depend on).
                if (!["png", "svg", "jpg"].includes(icon.extension)) throw new FimError("Invalid file extension saved in desktop configuration");
                const out = extname(path).endsWith(icon.extension) ? path : `${path}.${icon.extension}`;
                try {
                  writeAtomic(out, icon.data, { mkdir: false });
                } catch (error) {
                  throw new FimError(`Could not write the icon to '${out}': ${(error as Error).message}`);
                }
                log.info(`Wrote the icon (${icon.extension}, ${icon.data.length} bytes) to '${resolve(out)}'`);
              });
          }
          rejectTrailing("fim-desktop", more);
          const [context, render] =
            kind === "entry" ? (["Failed to dump desktop entry", entryText] as const) : (["Failed to dump MIME type", mimeText] as const);
          return () =>
            withContext(context, () => {
              write(1, `${render(requireDesktop(runtime), runtime.image.path)}\n`);
            });
        },
      }),
    );
  },
};
