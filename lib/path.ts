// POSIX path arithmetic, the few functions the launcher uses, with node:path's results
// (test/unit/path.test.ts compares them on every path of up to seven characters of `a`, `b`, `.`, `/`).
// Importing node:path costs every start ~0.4 ms (a trivial compiled program takes ~1.08x as
// long), and the launcher only ever splits and joins strings.

/** `path` with `.`, `..` and repeated slashes resolved; a trailing slash is kept. */
export function normalize(path: string): string {
  if (path === "") return ".";
  const absolute = path.startsWith("/");
  const kept: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") kept.push(segment);
    else if (kept.length > 0 && kept[kept.length - 1] !== "..") kept.pop();
    else if (!absolute) kept.push("..");
  }
  const body = kept.join("/");
  const result = absolute ? `/${body}` : body || ".";
  return path.endsWith("/") && result !== "/" ? `${result}/` : result;
}

export function isAbsolute(path: string): boolean {
  return path.startsWith("/");
}

/** The non-empty parts joined by `/`, normalized; `.` when there are none. */
export function join(...parts: string[]): string {
  const joined = parts.filter((part) => part !== "").join("/");
  return joined === "" ? "." : normalize(joined);
}

/** The absolute path the parts name, read right to left from the working directory. */
export function resolve(...parts: string[]): string {
  let path = "";
  for (let i = parts.length - 1; i >= -1 && !path.startsWith("/"); i--) {
    const part = i >= 0 ? parts[i]! : process.cwd();
    if (part !== "") path = path === "" ? part : `${part}/${path}`;
  }
  const result = normalize(path);
  return result.length > 1 && result.endsWith("/") ? result.slice(0, -1) : result;
}

/** Where the last name starts and ends once trailing slashes are left out (end 0: none). */
function lastName(path: string): { start: number; end: number } {
  let end = path.length;
  while (end > 0 && path[end - 1] === "/") end--;
  return { start: path.lastIndexOf("/", end - 1) + 1, end };
}

export function basename(path: string): string {
  const { start, end } = lastName(path);
  return path.slice(start, end);
}

export function dirname(path: string): string {
  if (path === "") return ".";
  const { start, end } = lastName(path);
  if (end === 0) return "/"; // only slashes
  if (start === 0) return ".";
  // Up to the slash before that name; node:path keeps the slashes before it ("a//b" gives
  // "a/") and gives "//" for "//b".
  const cut = start - 1;
  if (cut === 0) return "/";
  return cut === 1 && path.startsWith("/") ? "//" : path.slice(0, cut);
}

/** From the last dot of the last name on; "" when that dot starts the name, and for "..". */
export function extname(path: string): string {
  const name = basename(path);
  const dot = name.lastIndexOf(".");
  return dot <= 0 || name === ".." ? "" : name.slice(dot);
}
