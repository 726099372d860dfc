// node:os and node:buffer, loaded on their first call: importing either costs every start
// ~0.2-0.25 ms (a trivial compiled program takes ~1.05x as long), and a brief command calls
// neither. Every module of the launcher imports these instead (test/unit/fs.test.ts checks).
import type * as NodeBuffer from "node:buffer";
import type * as NodeOs from "node:os";
import { nodeFs } from "./fs.ts";
import { noteRead, watching } from "./track.ts";

let os: typeof NodeOs | undefined;
const nodeOs = (): typeof NodeOs => (os ??= require("node:os") as typeof NodeOs);

/** The user database, as a dependency of a watched run (lib/track.ts): what getpwuid(3) reads in the common case. */
function notePasswd(): void {
  if (watching()) for (const file of ["/etc/passwd", "/etc/nsswitch.conf"]) noteRead(nodeFs(), file, "stat");
}

export const homedir = (): string => (notePasswd(), nodeOs().homedir());
export const tmpdir = (): string => nodeOs().tmpdir();
/** The kernel's release (uname -r). */
export const release = (): string => nodeOs().release();
export const userInfo = (): NodeOs.UserInfo<string> => (notePasswd(), nodeOs().userInfo());
/** os.constants (errno and signal numbers differ between architectures). */
export const osConstants = (): typeof NodeOs.constants => nodeOs().constants;

let buffer: typeof NodeBuffer | undefined;
export const isUtf8 = (bytes: Uint8Array): boolean => (buffer ??= require("node:buffer") as typeof NodeBuffer).isUtf8(bytes);
