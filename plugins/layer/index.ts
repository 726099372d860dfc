// fim-layer create | add | commit | list (reference §12), and remove | squash to manage the
// layers afterwards (manage.ts).
import { closeSync, statSync } from "../../lib/fs.ts";
import { resolve } from "../../lib/path.ts";
import { parseWord, rejectTrailing } from "../../core/cli.ts";
import { FimError, withContext } from "../../core/errors.ts";
import { write } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { tryLockDataDirectory } from "../../core/run-services.ts";
import type { Runtime } from "../../core/runtime.ts";
import { appendLayer } from "./append.ts";
import { commit, createLayer } from "./commit.ts";
import { discoverLayers, identify } from "./discover.ts";
import { listLong, parseIndex, remove, squash } from "./manage.ts";

export { discoverLayers, type Layer } from "./discover.ts";

const NAME = "layer";
const OPS = ["create", "add", "commit", "list", "remove", "squash"] as const;
const LONG = ["-l", "--long"];

/** Refuses a file that is not a complete layer of a known format. */
function checkLayerFile(runtime: Runtime, file: string): void {
  let size: number;
  try {
    const info = statSync(file);
    if (!info.isFile()) throw new Error("not a regular file");
    size = info.size;
  } catch (error) {
    throw new FimError(`Failed to open input file '${file}': ${(error as Error).message}`);
  }
  const format = identify(runtime, { path: file, offset: 0, size });
  if (typeof format === "string") throw new FimError(`'${file}' is not a valid layer: ${format}`);
}

export const layerPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.commands.tap(NAME, (commands) =>
      commands.set("fim-layer", {
        name: "fim-layer",
        summary: "Manage the layers of the current FlatImage",
        help: [
          { usage: "fim-layer <create> <in-dir> <out-file>", args: [["create", "Creates a layer file from a directory"], ["in-dir", "Directory to compress"], ["out-file", "Layer file to write"]] },
          { usage: "fim-layer <add> <in-file>", args: [["add", "Appends a layer file to the image"], ["in-file", "Layer file"]] },
          {
            usage: "fim-layer <commit> <binary|layer|file> [path]",
            args: [
              ["commit", "Compresses the changes made in the container into a new layer"],
              ["binary", "Appends the new layer to the image"],
              ["layer", "Saves it as the next layer-NNN.layer in the data directory's layers/"],
              ["file", "Saves it to the given path"],
            ],
            notes: [
              "FIM_COMPRESSION_LEVEL (0-9, default 7) sets the compression level",
              "The package manager's lists and caches are left out of the layer and stay in the data directory",
            ],
          },
          {
            usage: "fim-layer <list> [-l|--long]",
            args: [
              ["list", "Lists the layers in mount order: index:offset:size:path"],
              ["-l, --long", "One line per layer: index, size, where it is (image or file) and what it contains"],
            ],
          },
          {
            usage: "fim-layer <remove> <index>...",
            args: [
              ["remove", "Removes layers, by their index in fim-layer list"],
              ["index", "A layer embedded in the image (not 0, the root filesystem), or one in the data directory's layers/"],
            ],
            notes: ["The image is rewritten beside itself and renamed over the old file: this needs as much free space again, and an interrupted rewrite leaves the image as it was"],
            examples: ["fim-layer remove 2", "fim-layer remove 2 3"],
          },
          {
            usage: "fim-layer <squash> <first> <last>",
            args: [
              ["squash", "Merges the embedded layers first to last into one: what later layers deleted or replaced no longer takes space"],
              ["first", "Index of the lowest layer to merge"],
              ["last", "Index of the highest layer to merge"],
            ],
            notes: ["Rewrites the image like remove; FIM_COMPRESSION_LEVEL sets the new layer's compression"],
            examples: ["fim-layer squash 1 3"],
          },
        ],
        parse(args) {
          const [opWord, ...rest] = args;
          if (opWord === undefined) throw new FimError(`Missing op for 'fim-layer' (${OPS.join(",")})`, { level: "C" });
          const op = parseWord(opWord, OPS, "Invalid layer operation");
          if (op === "NONE") throw new FimError("Invalid layer operation", { level: "C" });
          if (op === "add") {
            if (rest.length !== 1) throw new FimError("add requires exactly one argument (/path/to/file.layer)", { level: "C" });
            const file = resolve(rest[0]!);
            return () =>
              withContext("Failed to add layer", () => {
                checkLayerFile(runtime, file);
                appendLayer(runtime.image, file);
                log.info(`Included novel layer from file '${file}'`);
              });
          }
          if (op === "create") {
            if (rest.length !== 2) throw new FimError("create requires exactly two arguments (/path/to/dir /path/to/file.layer)", { level: "C" });
            const [source, output] = rest.map((path) => resolve(path)) as [string, string];
            return () => withContext("Failed to create layer", () => createLayer(runtime, log, source, output));
          }
          if (op === "list") {
            const long = rest.length > 0 && LONG.includes(rest[0]!);
            rejectTrailing("fim-layer list", long ? rest.slice(1) : rest);
            return () =>
              withContext("Failed to list layers", async () => {
                if (long) return listLong(runtime, log);
                const layers = await discoverLayers(runtime, log);
                write(1, layers.map((layer, index) => `${index}:${layer.offset}:${layer.size}:${layer.path}\n`).join(""));
              });
          }
          if (op === "remove") {
            if (rest.length === 0) throw new FimError("Missing index for 'remove' (see fim-layer list)", { level: "C" });
            const indices = rest.map((word) => parseIndex(word, "remove"));
            return () => withContext("Failed to remove layer", () => remove(runtime, log, indices));
          }
          if (op === "squash") {
            if (rest.length < 2) throw new FimError("squash requires two indices, the first and the last layer to merge (see fim-layer list)", { level: "C" });
            const [first, last] = rest.slice(0, 2).map((word) => parseIndex(word, "squash")) as [number, number];
            rejectTrailing("fim-layer squash", rest.slice(2));
            if (first >= last) throw new FimError(`squash needs the lower index first and at least two layers: 'squash ${first} ${last}'`, { level: "C" });
            return () => withContext("Failed to squash layers", () => squash(runtime, log, first, last));
          }
          const [modeWord, ...modeArgs] = rest;
          if (modeWord === undefined) throw new FimError("Missing op for 'commit' (binary,layer,file)", { level: "C" });
          const mode = parseWord(modeWord, ["binary", "layer", "file"] as const, "Invalid commit operation");
          if (mode === "NONE") throw new FimError("Invalid commit operation", { level: "C" });
          let destination: string | undefined;
          if (mode === "file") {
            if (modeArgs.length === 0) throw new FimError("Missing path for 'file' operation", { level: "C" });
            destination = resolve(modeArgs.shift()!);
          }
          rejectTrailing("fim-layer commit", modeArgs);
          return () =>
            withContext("Failed to commit layer", async () => {
              // While a run shares the data directory's mounts, its guests write <data>/root:
              // committing (and then erasing) it under them would lose writes. Held for the
              // whole commit, the lock also keeps runs from starting meanwhile.
              const lock = tryLockDataDirectory(runtime);
              if (lock === undefined) {
                throw new FimError(
                  `An instance of this image runs on '${runtime.paths.data}' ('fim-instance list' shows it): it must end before its changes can be committed (what it writes stays in '${runtime.paths.upper}' for the next commit)`,
                );
              }
              try {
                await commit(runtime, log, mode, destination);
              } finally {
                closeSync(lock);
              }
            });
        },
      }),
    );
  },
};
