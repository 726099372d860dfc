// What desktop integration writes under XDG_DATA_HOME (reference §13.3), byte for byte.
import { mkdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, isAbsolute } from "node:path";
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

/** A path as one quoted Exec argument (desktop entry spec: quoting, then the string escapes, `%` doubled). */
function execArgument(path: string): string {
  const quoted = path.replace(/["`$\\]/g, (c) => `\\${c}`);
  return `"${quoted.replace(/\\/g, "\\\\").replace(/%/g, "%%")}"`;
}

export function entryText(desktop: Desktop, image: string): string {
  if (/[\n\r]/.test(image)) throw new FimError(`The image path '${image}' contains a line break: it cannot be written in a desktop entry`);
  return [
    "[Desktop Entry]",
    `Name=${desktop.name}`,
    "Type=Application",
    `Comment=FlatImage distribution of "${desktop.name}"`,
    `Exec=${execArgument(image)} %F`,
    `Icon=flatimage_${desktop.name}`,
    `MimeType=application/flatimage_${desktop.name};`,
    `Categories=${desktop.categories.map((category) => `${category};`).join("")}`,
  ].join("\n");
}

function xmlAttribute(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

export function globLine(image: string): string {
  return `<glob weight="100" pattern="${xmlAttribute(basename(image))}"/>`;
}

export function mimeText(desktop: Desktop, image: string): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">',
    `  <mime-type type="application/flatimage_${xmlAttribute(desktop.name)}">`,
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
