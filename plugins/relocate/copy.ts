// The per-build copy of the launcher. Written to a temporary name and renamed, so a copy
// interrupted half-way is never used; afterwards only its size is checked.
import { mkdirSync, statSync } from "node:fs";
import { extractRange } from "../../core/files.ts";
import type { Image } from "../../core/image.ts";
import type { Logger } from "../../core/log.ts";
import { ensureUserDir } from "../../core/paths.ts";

export function ensureLauncherCopy(image: Image, app: string, log: Logger): string {
  ensureUserDir();
  const bin = `${app}/bin`;
  const boot = `${bin}/fim_boot`;
  try {
    if (statSync(boot).size === image.launcherSize) return boot;
  } catch {
    // absent: copy it below
  }
  mkdirSync(bin, { recursive: true, mode: 0o700 });
  log.debug(`Writting binary file '${boot}'`);
  extractRange(image.path, 0, image.launcherSize, boot, { mode: 0o700 });
  return boot;
}
