// fim-desktop setup (reference §13.1): validate the file, resolve the icon, store both.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "../../lib/fs.ts";
import { tmpdir } from "../../lib/node.ts";
import { extname, join } from "../../lib/path.ts";
import * as v from "valibot";
import { FimError } from "../../core/errors.ts";
import { dumpJson } from "../../core/json.ts";
import { write } from "../../core/log.ts";
import { SLOTS, textBytes, writeJson } from "../../core/reserved.ts";
import type { Runtime } from "../../core/runtime.ts";
import { strerror } from "./files.ts";
import { checkIconContent, ICON_MAX, type IconExtension, writeIcon } from "./icon.ts";
import { canonicalCategories, canonicalItems, type Desktop, SetupSchema, storedForm } from "./schema.ts";

const NAME = "desktop";
const EXTENSIONS: Record<string, IconExtension> = { ".svg": "svg", ".png": "png", ".jpg": "jpg", ".jpeg": "jpg" };
const DOWNLOAD_TIMEOUT_MS = 60_000;

function deserializeError(message: string): FimError {
  return new FimError(message).context("Failed to deserialize json");
}

/** Reads and validates a setup file; the icon field is returned as given. */
/** A desktop setup, checked: what `setupDesktop` stores. */
export interface DesktopSetup {
  desktop: Desktop;
  icon: unknown;
}

/** Reads and checks a setup file (`fim-desktop setup <file>`). */
export function parseSetupFile(file: string): DesktopSetup {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new FimError(`Failed to open file '${file}' for desktop integration (${strerror(error)})`);
  }
  if (text === "") throw new FimError("Empty json data", { level: "W" });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw deserializeError(`Invalid JSON in '${file}': ${(error as Error).message}`);
  }
  return parseSetup(json, `file '${file}'`);
}

/** Checks a setup given as JSON data (a file's, or a recipe's `desktop` section); `source` names it in errors. */
export function parseSetup(json: unknown, source: string): DesktopSetup {
  const parsed = v.safeParse(SetupSchema(), json);
  if (!parsed.success) {
    const issue = parsed.issues[0];
    const where = issue.path?.map((item) => String(item.key)).join(".");
    const message = issue.input === undefined && issue.type === "object" ? "missing" : issue.message;
    throw deserializeError(`Invalid desktop integration ${source}: ${where ? `${where}: ` : ""}${message}`);
  }
  let integrations;
  try {
    integrations = canonicalItems(parsed.output.integrations);
  } catch (error) {
    throw deserializeError(`Invalid desktop integration ${source}: integrations: ${(error as Error).message}`);
  }
  const { name } = parsed.output;
  if (name.includes("/")) throw new FimError("Application name cannot contain the '/' character");
  // Holes upstream left open: these would produce a broken entry or file name.
  if (name === "") throw new FimError("Application name cannot be empty");
  if (/[\x00-\x1f\x7f]/.test(name)) throw new FimError("Application name cannot contain control characters");
  for (const category of parsed.output.categories) {
    if (category === "" || /[;\x00-\x1f\x7f]/.test(category)) {
      throw new FimError(`Invalid category '${category}': it must be non-empty, without ';' or control characters`);
    }
  }
  return { desktop: { name, categories: canonicalCategories(parsed.output.categories), integrations }, icon: parsed.output.icon };
}

function extensionOf(ext: string): IconExtension {
  const known = EXTENSIONS[ext];
  if (!known) throw new FimError(`Icon extension '${ext}' is not supported`);
  return known;
}

/** Downloads an icon URL into `dir`; fetch in-process (no wget on the host needed), with a timeout and a size cap. */
async function download(url: string, dir: string, log: ReturnType<Runtime["logger"]>): Promise<{ path: string; ext: string }> {
  log.info(`Icon is an URL: ${url}`);
  const base = new URL(url).pathname.split("/").pop() ?? "";
  const dot = base.lastIndexOf(".");
  if (dot === -1) throw new FimError("Could not get icon file extension from url");
  const ext = base.slice(dot);
  extensionOf(ext);
  let response: Response;
  try {
    response = await fetch(url, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS), redirect: "follow" });
  } catch (error) {
    const reason = (error as Error).name === "TimeoutError" ? `no answer within ${DOWNLOAD_TIMEOUT_MS / 1000} s` : (error as Error).message;
    throw new FimError(`Download failed for URL: ${url}: ${reason}`);
  }
  if (!response.ok) throw new FimError(`Download failed with HTTP status ${response.status} for URL: ${url}`);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body ?? []) {
    size += chunk.length;
    if (size > ICON_MAX) throw new FimError(`File is too large, more than '${ICON_MAX}' bytes at URL: ${url}`);
    chunks.push(chunk);
  }
  const path = join(dir, `icon${ext}`);
  writeFileSync(path, Buffer.concat(chunks));
  log.info(`Successfully downloaded icon to: ${path}`);
  return { path, ext };
}

/**
 * Everything `fim-desktop setup <file>` does: validates the file, resolves the icon (a path
 * relative to the current directory, or an http(s) URL), stores the icon and the desktop
 * JSON in the image and prints that JSON. Throws a FimError without the command's closing
 * context (`Failed to setup desktop integration`), which the caller adds as it sees fit.
 */
export async function setupDesktop(runtime: Runtime, { desktop, icon }: DesktopSetup): Promise<void> {
  const log = runtime.logger(NAME);
  if (typeof icon !== "string") throw new FimError("Could not retrieve icon path field from json");
  const stored = storedForm(desktop);
  textBytes(dumpJson(stored), SLOTS.desktop); // fails before anything is written

  let staging: string | undefined;
  try {
    let path = icon;
    let ext = extname(icon);
    if (/^https?:\/\//i.test(icon)) {
      staging = mkdtempSync(join(process.env.TMPDIR || tmpdir(), "fim-icon-"));
      try {
        ({ path, ext } = await download(icon, staging, log));
      } catch (error) {
        throw (error instanceof FimError ? error : new FimError(String(error))).context("Failed to resolve icon path or URL");
      }
    }
    const extension = extensionOf(ext);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (error) {
      throw new FimError(`Could not get size of file '${path}': ${strerror(error)}`);
    }
    if (size > ICON_MAX) throw new FimError(`File is too large, '${size}' bytes`);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch (error) {
      throw new FimError(`Could not read icon file '${path}': ${strerror(error)}`);
    }
    if (data.length > ICON_MAX) throw new FimError(`File is too large, '${data.length}' bytes`);
    checkIconContent(path, extension, data);
    writeIcon(runtime.image, { extension, data });
    writeJson(runtime.image, SLOTS.desktop, stored);
    write(1, `${dumpJson(stored)}\n`);
  } finally {
    if (staging) rmSync(staging, { recursive: true, force: true });
  }
}
