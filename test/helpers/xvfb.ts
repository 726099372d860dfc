// A private X server for tests: Xvfb on a free display (it says so on a pipe once it
// accepts clients), with an authorization cookie, and what tests look at: the
// window tree (xwininfo) and screenshots (xwd, decoded here).
import { spawnSync, type Subprocess } from "bun";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const TOOLS: Record<string, string> = { Xvfb: "xvfb", xauth: "xauth", xwininfo: "x11-utils", xwd: "x11-apps" };

/** The tools' paths; a missing one fails with the package to install. */
export function xTools(): Record<string, string> {
  const found: Record<string, string> = {};
  for (const [tool, pkg] of Object.entries(TOOLS)) {
    const path = Bun.which(tool, { PATH: `${process.env.PATH ?? ""}:/usr/bin:/bin` });
    if (!path) throw new Error(`${tool} is missing: install it (as root: apt-get install ${pkg}; scripts/prepare.sh does)`);
    found[tool] = path;
  }
  return found;
}

export interface XServer {
  /** `:N` */
  display: string;
  /** The client's cookie file (what XAUTHORITY names). */
  authority: string;
  /** DISPLAY and XAUTHORITY for a client. */
  env: Record<string, string>;
  stop(): Promise<void>;
}

/**
 * A display number nobody uses: no lock file, no socket, and no abstract socket (those are
 * per network namespace, not per /tmp: an X server in another sandbox with its own /tmp
 * would otherwise answer our clients).
 */
function freeDisplay(from: number): number {
  const unix = readFileSync("/proc/net/unix", "utf8");
  for (let n = from; n < from + 100; n++) {
    if (!existsSync(`/tmp/.X${n}-lock`) && !existsSync(`/tmp/.X11-unix/X${n}`) && !unix.includes(`@/tmp/.X11-unix/X${n}\n`)) return n;
  }
  throw new Error(`no free X display number in ${from}..${from + 99}`);
}

/** Starts Xvfb with its files in `dir`; resolves once it accepts connections. */
export async function startXvfb(dir: string): Promise<XServer> {
  const tools = xTools();
  const cookie = randomBytes(16).toString("hex");
  const serverAuth = join(dir, "server.xauth");
  const authority = join(dir, "client.xauth");
  // The server accepts every cookie of its -auth file, whatever display the entry names.
  xauth(tools.xauth!, serverAuth, ":0", cookie);
  let candidate = 10;
  for (let attempt = 0; ; attempt++) {
    candidate = freeDisplay(candidate);
    // -displayfd: it writes the number on stdout once it accepts connections.
    // Its log goes to a file: a pipe nobody reads would fill and stop the server. -noreset:
    // by default it resets when its last client leaves, and refuses connections meanwhile.
    const log = join(dir, `xvfb-${candidate}.log`);
    const server = Bun.spawn(
      [tools.Xvfb!, `:${candidate}`, "-displayfd", "1", "-auth", serverAuth, "-noreset", "-nolisten", "tcp", "-screen", "0", "800x600x24"],
      { stdin: "ignore", stdout: "pipe", stderr: Bun.file(log) },
    );
    const number = await firstLine(server.stdout);
    if (number === String(candidate)) {
      const display = `:${number}`;
      xauth(tools.xauth!, authority, display, cookie);
      return {
        display,
        authority,
        env: { DISPLAY: display, XAUTHORITY: authority },
        async stop() {
          server.kill();
          await server.exited;
        },
      };
    }
    server.kill();
    await server.exited;
    // Another server took the number between our look and its start: try the next one.
    if (attempt === 5) throw new Error(`Xvfb did not start (${number ? `said '${number}'` : `exit ${server.exitCode}`}):\n${readFileSync(log, "utf8")}`);
    candidate++;
  }
}

function xauth(program: string, file: string, display: string, cookie: string): void {
  const result = spawnSync([program, "-q", "-f", file, "add", display, "MIT-MAGIC-COOKIE-1", cookie], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`xauth add failed: ${result.stderr.toString()}`);
}

async function firstLine(stream: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stream.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return text.split("\n")[0]!.trim();
}

/** `xwininfo -root -tree` on the server; throws with its output on failure. */
export function windowTree(server: XServer): string {
  const result = spawnSync([xTools().xwininfo!, "-root", "-tree"], { env: { ...process.env, ...server.env }, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`xwininfo failed (exit ${result.exitCode}): ${result.stderr.toString()}`);
  return result.stdout.toString();
}

/** The id of the window whose name is `name` (the line `0x… "name": …` of the tree), if any. */
export function windowId(tree: string, name: string): string | undefined {
  const line = tree.split("\n").find((text) => text.includes(`"${name}":`));
  return line?.trim().split(/\s+/)[0];
}

export interface Screenshot {
  width: number;
  height: number;
  /** Distinct pixel values inside the window's border. */
  colours: number;
}

/** Takes a screenshot of one window with xwd and counts the distinct pixel values inside its border. */
export function screenshot(server: XServer, id: string): Screenshot {
  const result = spawnSync([xTools().xwd!, "-silent", "-id", id], { env: { ...process.env, ...server.env }, stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`xwd failed (exit ${result.exitCode}): ${result.stderr.toString()}`);
  return decodeXwd(new Uint8Array(result.stdout));
}

/**
 * An XWD file (X11/XWDFile.h): a header of 25 big-endian 32-bit fields and the window's name,
 * then `ncolors` 12-byte colour entries, then the pixels in the header's byte order.
 */
export function decodeXwd(bytes: Uint8Array): Screenshot {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const field = (index: number) => view.getUint32(index * 4, false);
  const [headerSize, version, format, , width, height, , byteOrder] = [0, 1, 2, 3, 4, 5, 6, 7].map(field) as number[];
  const bitsPerPixel = field(11);
  const bytesPerLine = field(12);
  const mask = field(14) | field(15) | field(16);
  const ncolors = field(19);
  const border = field(24);
  if (version !== 7 || format !== 2 || bitsPerPixel !== 32) throw new Error(`unexpected XWD file (version ${version}, format ${format}, ${bitsPerPixel} bits per pixel)`);
  const start = headerSize! + ncolors * 12;
  const little = byteOrder === 0;
  const seen = new Set<number>();
  for (let y = border; y < height! - border; y++) {
    for (let x = border; x < width! - border; x++) seen.add(view.getUint32(start + y * bytesPerLine + x * 4, little) & mask);
  }
  return { width: width!, height: height!, colours: seen.size };
}
