// The helper tools embedded in the image (zstd-compressed), extracted on first use to
// <app>/bin, once per build id. Each one is decompressed under a temporary name, checked
// against its sha256 and renamed, so an extraction killed half-way, or a damaged image,
// leaves nothing that would be used. Later uses trust the file because of where it is: the
// build's directory is private to the user and read-only for guests (plugins/runtime-dir).
import { closeSync, existsSync, lstatSync, mkdirSync, openSync, readAt, renameSync, rmSync, writeSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import type { ToolRecord } from "../../core/image.ts";
import { ensureUserDir, GLOBAL_DIR } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { leftoversOfEnded } from "../../core/proc.ts";

const NAME = "tools";

/** Temporaries (<name>.<pid>.tmp) of extractions whose process is gone. */
function sweepTemporaries(bin: string): void {
  for (const name of leftoversOfEnded(bin, /\.(\d+)\.tmp$/)) rmSync(`${bin}/${name}`, { force: true });
}

/** Ours, and whole: a file cut by a crash or a full disk is extracted again. */
function usable(target: string, record: ToolRecord): boolean {
  try {
    const info = lstatSync(target);
    return info.isFile() && info.uid === process.getuid?.() && info.size === record.rawSize;
  } catch {
    return false;
  }
}

function extract(runtime: Runtime, record: ToolRecord, target: string): void {
  const { image } = runtime;
  const fd = openSync(image.path, "r");
  let stored: Buffer;
  try {
    stored = readAt(fd, record.offset, record.size);
  } finally {
    closeSync(fd);
  }
  // C level: runs show only those, and nothing runs without its tools.
  const damaged = (why: string) =>
    new FimError(`The helper tool '${record.name}' stored in '${image.path}' is damaged: it ${why} (offset ${record.offset}, ${record.size} bytes); get the image again`, { level: "C" });
  if (stored.length !== record.size) throw damaged("cannot be read (the image is truncated?)");
  let data: Buffer;
  try {
    data = Buffer.from(Bun.zstdDecompressSync(stored));
  } catch {
    throw damaged("is not valid zstd data");
  }
  if (data.length !== record.rawSize || new Bun.CryptoHasher("sha256").update(data).digest("hex") !== record.sha256) throw damaged("does not match its sha256");
  const temporary = `${target}.${process.pid}.tmp`;
  let out: number | undefined;
  try {
    out = openSync(temporary, "wx", 0o755);
    for (let done = 0; done < data.length; ) done += writeSync(out, data, done, data.length - done);
    closeSync(out);
    out = undefined;
    renameSync(temporary, target);
  } catch (error) {
    if (out !== undefined) closeSync(out);
    rmSync(temporary, { force: true });
    throw new FimError(`Could not extract the helper tool '${record.name}' to '${target}': ${(error as Error).message}`);
  }
}

export const toolsPlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.tool.tapPromise(NAME, async (name) => {
      const record = runtime.image.header.tools.find((tool) => tool.name === name);
      if (!record) return undefined;
      const { bin, app } = runtime.paths;
      const target = `${bin}/${name}`;
      if (usable(target, record)) return target;
      try {
        if (!existsSync(bin)) {
          // Without the stub (a bare launcher), the directory may not exist yet.
          if (app.startsWith(`${GLOBAL_DIR}/app/`)) ensureUserDir();
          mkdirSync(bin, { recursive: true, mode: 0o700 });
        }
        sweepTemporaries(bin);
      } catch (error) {
        throw new FimError(`Could not extract the helper tool '${name}' to '${target}': ${(error as Error).message}`);
      }
      log.debug(`Writting binary file '${target}'`);
      extract(runtime, record, target);
      return target;
    });
  },
};
