// What desktop integration writes under XDG_DATA_HOME (reference §13.3), byte for byte.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "../../lib/fs.ts";
import { basename, dirname, isAbsolute } from "../../lib/path.ts";
import { FimError } from "../../core/errors.ts";
import type { Desktop } from "./schema.ts";

const STRERROR: Record<string, string> = {
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  EISDIR: "Is a directory",
  ENOTDIR: "Not a directory",
  ELOOP: "Too many levels of symbolic links",
};

/** The C library's wording of a Node file error (upstream prints strerror). */
export function strerror(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return (code && STRERROR[code]) || (error as Error).message;
}

export const ICON_SIZES = [16, 22, 24, 32, 48, 64, 96, 128, 256] as const;

/** `$XDG_DATA_HOME`, or `$HOME/.local/share` (a relative XDG_DATA_HOME is ignored, as the spec says). */
export function xdgDataHome(env: NodeJS.ProcessEnv = process.env): string {
  const xdg = env.XDG_DATA_HOME;
  if (xdg && isAbsolute(xdg)) return xdg;
  if (!env.HOME) throw new FimError("Could not read variable 'HOME'");
  return `${env.HOME}/.local/share`;
}

/**
 * The name as it goes into file names, the icon name and the MIME type: what a MIME subtype
 * allows (RFC 6838: letters, digits, `.`, `_`, `-`, `+`), the rest replaced (`XTerm Sandbox`
 * → `XTerm_Sandbox`; other ASCII by `_`, other characters by `_` and their UTF-8 bytes in hex,
 * so names in other scripts stay apart). A name that is already valid stays as it is, so the
 * files are upstream's for it.
 */
export function desktopId(name: string): string {
  let id = "";
  for (const char of name) {
    if (/^[A-Za-z0-9._+-]$/.test(char)) id += char;
    else if (char.charCodeAt(0) < 0x80) id += "_";
    else id += `_${Buffer.from(char).toString("hex")}`;
  }
  return id;
}

/** Paths of what integration writes, for an id (desktopId). */
export function desktopPaths(xdg: string, name: string) {
  const hicolor = `${xdg}/icons/hicolor`;
  return {
    entry: `${xdg}/applications/flatimage-${name}.desktop`,
    mimeDir: `${xdg}/mime`,
    mime: `${xdg}/mime/packages/flatimage-${name}.xml`,
    mimeGeneric: `${xdg}/mime/packages/flatimage.xml`,
    svgMime: `${hicolor}/scalable/mimetypes/application-flatimage_${name}.svg`,
    svgApp: `${hicolor}/scalable/apps/flatimage_${name}.svg`,
    pngMime: (size: number) => `${hicolor}/${size}x${size}/mimetypes/application-flatimage_${name}.png`,
    pngApp: (size: number) => `${hicolor}/${size}x${size}/apps/flatimage_${name}.png`,
    logoMime: `${hicolor}/scalable/mimetypes/application-flatimage.svg`,
    logoApp: `${hicolor}/scalable/apps/flatimage.svg`,
  };
}

/** A value of a desktop entry key (spec, "Possible value types"): escapes, no line breaks. */
function entryValue(text: string): string {
  return text
    .replace(/\\/g, "\\\\")
    .replace(/\n/g, "\\n")
    .replace(/\r/g, "\\r")
    .replace(/\t/g, "\\t")
    .replace(/^ /, "\\s")
    .replace(/[\x00-\x1f\x7f]/g, "\ufffd");
}

/** One item of a list value (`;` separated). */
const listItem = (text: string) => entryValue(text).replace(/;/g, "\\;");

/**
 * A path as one quoted Exec argument (desktop entry spec: the argument quoted, then escaped
 * as a string value, `%` doubled). Line breaks and tabs become escapes; other control
 * characters cannot be written in an entry.
 */
function execArgument(path: string): string {
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(path)) throw new FimError(`The image path '${path}' contains control characters: it cannot be written in a desktop entry`);
  const quoted = path.replace(/["`$\\]/g, (c) => `\\${c}`);
  return `"${quoted.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\r/g, "\\r").replace(/\t/g, "\\t").replace(/%/g, "%%")}"`;
}

export function entryText(desktop: Desktop, image: string): string {
  const id = desktopId(desktop.name);
  return [
    "[Desktop Entry]",
    `Name=${entryValue(desktop.name)}`,
    "Type=Application",
    `Comment=${entryValue(`FlatImage distribution of "${desktop.name}"`)}`,
    `Exec=${execArgument(image)} %F`,
    `Icon=flatimage_${id}`,
    `MimeType=application/flatimage_${id};`,
    `Categories=${desktop.categories.map((category) => `${listItem(category)};`).join("")}`,
  ].join("\n");
}

/** Text for an XML attribute; characters XML cannot carry at all are refused. */
function xmlAttribute(text: string): string {
  if (/[\x00-\x08\x0b\x0c\x0e-\x1f]/.test(text)) throw new FimError(`'${text}' contains control characters: it cannot be written in a MIME package`);
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/\n/g, "&#10;")
    .replace(/\r/g, "&#13;")
    .replace(/\t/g, "&#9;");
}

/** A file name as a glob that matches only itself (`*`, `?` and `[` in brackets). */
const literalGlob = (name: string) => name.replace(/[*?[]/g, (c) => `[${c}]`);

export function globLine(image: string): string {
  return `<glob weight="100" pattern="${xmlAttribute(literalGlob(basename(image)))}"/>`;
}

export function mimeText(desktop: Desktop, image: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
    `  <mime-type type="application/flatimage_${desktopId(desktop.name)}">`,
    "    <comment>FlatImage Application</comment>",
    `    ${globLine(image)}`,
    '    <sub-class-of type="application/x-executable"/>',
    '    <generic-icon name="application-flatimage"/>',
    "  </mime-type>",
    "</mime-info>",
  ].join("\n");
}

export const GENERIC_MIME = `<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/flatimage">
    <comment>FlatImage Application</comment>
    <magic>
      <match value="ELF" type="string" offset="1">
        <match value="0x46" type="byte" offset="8">
          <match value="0x49" type="byte" offset="9">
            <match value="0x01" type="byte" offset="10"/>
          </match>
        </match>
      </match>
    </magic>
    <glob weight="50" pattern="*.flatimage"/>
    <sub-class-of type="application/x-executable"/>
    <generic-icon name="application-flatimage"/>
  </mime-type>
</mime-info>
`;

/** Writes a file atomically (temporary name, then rename): a reader never sees half of it. */
export function writeAtomic(path: string, data: string | Uint8Array, options: { mkdir?: boolean } = {}): void {
  if (options.mkdir !== false) mkdirSync(dirname(path), { recursive: true });
  const temporary = `${dirname(path)}/.${basename(path)}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, data, { mode: 0o644 });
    renameSync(temporary, path);
  } catch (error) {
    rmSync(temporary, { force: true });
    throw error;
  }
}
