// Relocation (reference §1, §7.5). The image file must never be the running executable
// of a process that writes it or lives long (ETXTBSY), so the launcher part of the image
// is copied once per build to <app>/bin/fim_boot and re-executed with the same argv and
// PID. Quick read-only commands may run in place and skip the second start.
import { closeSync, fstatSync, openSync, realpathSync } from "node:fs";
import { FimError } from "../../core/errors.ts";
import { elfEnd, Image } from "../../core/image.ts";
import { execve } from "../../core/libc.ts";
import { write, type Logger } from "../../core/log.ts";
import type { Plugin } from "../../core/plugin.ts";
import { appDir } from "../../core/paths.ts";
import { ensureLauncherCopy } from "./copy.ts";

const NAME = "relocate";

/**
 * The per-build copy of the launcher, for helper processes that run during a run (the image
 * file itself must not be executing then, or it could not be written).
 */
export function launcherCopy(image: Image, log: Logger): string {
  return ensureLauncherCopy(image, appDir(process.getuid?.() ?? 0, image.header.buildId), log);
}

function fromEnvironment(): Image {
  const self = process.env.FIM_BIN_SELF;
  if (!self) {
    throw new FimError("Could not read variable 'FIM_BIN_SELF'", { level: "E" }).context(
      "This is a bare launcher without an image: run an image file (e.g. dist/<bundle>.flatimage) instead",
      "C",
    );
  }
  try {
    return Image.open(self);
  } catch (error) {
    throw (error as FimError).context("Could not read the image file", "C");
  }
}

export const relocatePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    const log = runtime.logger(NAME);
    runtime.hooks.relocate.tapPromise(NAME, async ({ argv, command, args }) => {
      const fd = openSync("/proc/self/exe", "r");
      let image: Image;
      let imagePath: string;
      // A file no bigger than its ELF part is the relocated launcher (or bun itself in development).
      const relocated = fstatSync(fd).size <= elfEnd(fd, "/proc/self/exe");
      if (relocated) {
        closeSync(fd);
        return fromEnvironment();
      }
      try {
        imagePath = realpathSync("/proc/self/exe");
        image = Image.read(fd, imagePath);
      } catch (error) {
        if (error instanceof FimError) throw error.context("Failure to relocate binary", "C");
        throw new FimError(String(error)).context("Failure to relocate binary", "C");
      } finally {
        closeSync(fd);
      }
      process.env.FIM_BIN_SELF = imagePath;
      process.env.FIM_OFFSET = String(image.reservedOffset);

      if (process.env.FIM_MAIN_OFFSET !== undefined) {
        write(1, `${image.reservedOffset}\n`);
        process.exit(0);
      }
      if (command?.inPlace?.(args)) return image;

      const started = performance.now();
      let boot: string;
      try {
        boot = launcherCopy(image, log);
      } catch (error) {
        throw new FimError(`Could not copy the launcher: ${(error as Error).message}`).context("Failure to relocate binary", "C");
      }
      log.debug(`FIM_OFFSET: ${image.reservedOffset}`);
      log.debug(`Copy binaries finished in '${Math.round(performance.now() - started)}' ms`);
      const failure = execve(boot, [imagePath, ...argv], process.env);
      throw new FimError(`Could not perform 'evecve': ${failure}`).context("Failure to relocate binary", "C");
    });
  },
};
