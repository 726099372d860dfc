// The helper tools embedded in the image, extracted on first use to <app>/bin, once per
// build id. Each one is written under a temporary name, checked against its sha256 and
// renamed, so an extraction killed half-way leaves nothing that would be used.
import { mkdirSync, statSync } from "node:fs";
import { FimError } from "../../core/errors.ts";
import { extractRange } from "../../core/files.ts";
import { ensureUserDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";

const NAME = "tools";

export const toolsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.tool.tapPromise(NAME, async (name) => {
      const record = runtime.image.header.tools.find((tool) => tool.name === name);
      if (!record) return undefined;
      const target = `${runtime.paths.bin}/${name}`;
      try {
        if (statSync(target).size === record.size) return target;
      } catch {
        // not extracted yet
      }
      try {
        ensureUserDir();
        mkdirSync(runtime.paths.bin, { recursive: true, mode: 0o700 });
        log.debug(`Writting binary file '${target}'`);
        extractRange(runtime.image.path, record.offset, record.size, target, { mode: 0o755, sha256: record.sha256 });
      } catch (error) {
        throw new FimError(`Could not extract the helper tool '${name}' to '${target}': ${(error as Error).message}`);
      }
      return target;
    });
  },
};
