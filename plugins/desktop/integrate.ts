// Automatic integration (reference §13.3), the start notification (§13.6) and clean (§13.4).
// Loaded only when a desktop JSON is stored.
import { existsSync, readFileSync, rmSync } from "../../lib/fs.ts";
import { FimError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { Runtime } from "../../core/runtime.ts";
import { desktopId, desktopPaths, entryText, GENERIC_MIME, globLine, ICON_SIZES, mimeText, strerror, writeAtomic, xdgDataHome } from "./files.ts";
import { readIcon } from "./icon.ts";
import { LOGO_SVG } from "./logo.ts";
import { type Desktop, enabled } from "./schema.ts";


function readOrUndefined(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Runs the host's update-mime-database on `<xdg>/mime` (stdio inherited, as upstream). */
export async function updateMimeDatabase(dir: string): Promise<void> {
  const tool = Bun.which("update-mime-database");
  if (!tool) throw new FimError("Could not find 'update-mime-database' in PATH (install shared-mime-info)");
  const child = Bun.spawn([tool, dir], { stdio: ["ignore", "inherit", "inherit"] });
  const code = await child.exited;
  if (code !== 0) throw new FimError(`update-mime-database failed with exit code: ${code}`);
}

async function integrateIcons(runtime: Runtime, paths: ReturnType<typeof desktopPaths>, log: Logger): Promise<void> {
  for (const found of [paths.pngApp(64), paths.svgApp]) {
    if (existsSync(found)) {
      log.debug(`Icons are integrated, found '${found}'`);
      return;
    }
  }
  const icon = readIcon(runtime.image);
  if (!icon) throw new FimError("Empty icon data");
  if (icon.extension === "svg") {
    // The apps icon last: its presence is what tells the next run that icons are done.
    for (const path of [paths.svgMime, paths.svgApp]) if (!existsSync(path)) writeAtomic(path, icon.data);
  } else {
    log.info(`Reading image from the icon of '${runtime.image.path}' (${icon.extension})`);
    const { resizeIcon } = await import("./resize.ts");
    const sizes = await resizeIcon(icon.data, ICON_SIZES, (message) => log.info(message));
    const marker = paths.pngApp(64);
    for (const [size, png] of sizes) {
      for (const path of [paths.pngMime(size), paths.pngApp(size)]) {
        if (path === marker || existsSync(path)) continue;
        log.info(`Saving image to '${path}'`);
        writeAtomic(path, png);
      }
    }
    log.info(`Saving image to '${marker}'`);
    writeAtomic(marker, sizes.get(64)!);
  }
  writeAtomic(paths.logoMime, LOGO_SVG);
  writeAtomic(paths.logoApp, LOGO_SVG);
}

/** Writes what the enabled integrations need; an icon failure is only logged (debug). */
export async function integrate(runtime: Runtime, desktop: Desktop, log: Logger): Promise<void> {
  const xdg = xdgDataHome();
  const image = runtime.image.path;
  const paths = desktopPaths(xdg, desktopId(desktop.name));
  if (enabled(desktop, "ENTRY")) {
    log.info("Integrating desktop entry");
    const text = entryText(desktop, image);
    // Rewritten only when it changes (the image was moved or renamed, or the JSON changed).
    if (readOrUndefined(paths.entry) !== text) writeAtomic(paths.entry, text);
    else log.debug("Desktop entry is up to date");
  }
  if (enabled(desktop, "MIMETYPE")) {
    log.info("Integrating mime database");
    const current = readOrUndefined(paths.mime);
    const glob = globLine(image);
    if (current !== undefined && current.split("\n").some((line) => line.trim() === glob)) {
      log.debug("Skipping mime database update");
    } else {
      writeAtomic(paths.mime, mimeText(desktop, image));
      writeAtomic(paths.mimeGeneric, GENERIC_MIME);
      log.info(`Updating mime database '${xdg}'`);
      await updateMimeDatabase(paths.mimeDir);
    }
  }
  if (enabled(desktop, "ICON")) {
    log.info("Integrating desktop icons");
    try {
      await integrateIcons(runtime, paths, log);
    } catch (error) {
      log.debug(`Could not integrate icons: ${(error as Error).message}`);
    }
  }
}

/** The icon a start notification shows: the 64 px PNG when there is one, else the SVG. */
export function appIcon(desktop: Desktop): string {
  const paths = desktopPaths(xdgDataHome(), desktopId(desktop.name));
  return existsSync(paths.pngApp(64)) ? paths.pngApp(64) : paths.svgApp;
}

/**
 * Removes what the enabled integrations wrote; the generic MIME file and logo stay (reference
 * §13.4). For a name that is not a valid id (desktopId), the files earlier versions wrote
 * under the name itself go too.
 */
export async function clean(runtime: Runtime, desktop: Desktop, log: Logger): Promise<void> {
  const xdg = xdgDataHome();
  const ids = [...new Set([desktopId(desktop.name), desktop.name])];
  const remove = (path: string, always = true) => {
    try {
      if (!always && !existsSync(path)) return;
      rmSync(path, { force: true });
      log.info(`Removed file '${path}'`);
    } catch (error) {
      log.error(`Could not remove '${path}': ${strerror(error)}`);
    }
  };
  // jpg icons were written as PNGs too (upstream removed the svg names for them).
  const extension = enabled(desktop, "ICON") ? readIcon(runtime.image)?.extension : undefined;
  for (const [index, id] of ids.entries()) {
    const paths = desktopPaths(xdg, id);
    const always = index === 0;
    if (enabled(desktop, "ENTRY")) remove(paths.entry, always);
    if (enabled(desktop, "MIMETYPE") && (always || existsSync(paths.mime))) {
      remove(paths.mime);
      log.info(`Updating mime database '${xdg}'`);
      try {
        await updateMimeDatabase(paths.mimeDir);
      } catch (error) {
        log.error((error as Error).message);
      }
    }
    if (enabled(desktop, "ICON")) {
      if (extension === "png" || extension === "jpg") {
        for (const size of ICON_SIZES) for (const path of [paths.pngMime(size), paths.pngApp(size)]) remove(path, always);
      } else {
        remove(paths.svgMime, always);
        remove(paths.svgApp, always);
      }
    }
  }
}
