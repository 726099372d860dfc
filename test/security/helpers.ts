// What the escape tests share: the C probe built for the guest, runs that leave the event
// loop free (a listener of the test must answer while the guest talks to it), listeners on
// unix sockets and on the host's loopback, and the paths a denied file must be absent from.
import { type Socket } from "bun";
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { ROOT, type RunResult, type TestImage } from "../helpers/image.ts";

export const asRoot = process.getuid!() === 0;

/** Where upstream's layout (and this runtime before default-deny) showed the host's `/`. */
export const HOST_VIEW = "/tmp/fim/run/host";

/** The image's writable root on the host (`<data>/root`, the guest's `/` above the layers). */
export const upperOf = (image: TestImage) => join(image.dir, `.${image.path.split("/").pop()}.data/root`);

/**
 * Puts test/fixtures/seccomp-probe.c at `/probe` in the guest, through the image's writable
 * root; linked statically, as the image's userland has no C library of the host's.
 */
export function installProbe(image: TestImage): void {
  const gcc = Bun.which("gcc");
  if (!gcc) throw new Error("gcc is missing: install it (as root: apt-get install gcc libc6-dev)");
  const upper = upperOf(image);
  mkdirSync(upper, { recursive: true });
  const built = Bun.spawnSync([gcc, "-static", "-O2", "-Wall", "-o", join(upper, "probe"), join(ROOT, "test/fixtures/seccomp-probe.c")], { stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(`compiling the probe failed: ${built.stderr.toString()}`);
}

/** Like image.run, without blocking the event loop. */
export async function runAsync(image: TestImage, args: string[], options: { env?: Record<string, string | undefined> } = {}): Promise<RunResult> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries({ ...process.env, ...options.env })) if (value !== undefined) env[key] = value;
  const child = Bun.spawn([image.path, ...args], { env, cwd: image.dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  return { code, stdout, stderr };
}

export interface Listener {
  stop(): void;
}

const greeter = (greeting: string) => ({
  open(socket: Socket) {
    socket.write(`${greeting}\n`);
    socket.end();
  },
  data() {},
});

/** A unix socket (a path, or `@name` for an abstract one) that sends `greeting` and a newline to each client. */
export function unixListener(path: string, greeting: string): Listener {
  const abstract = path.startsWith("@");
  if (!abstract) mkdirSync(dirname(path), { recursive: true });
  const server = Bun.listen({ unix: abstract ? `\0${path.slice(1)}` : path, socket: greeter(greeting) });
  return {
    stop() {
      server.stop(true);
      if (!abstract) rmSync(path, { force: true });
    },
  };
}

/** A TCP listener on the host's 127.0.0.1 that greets each client. */
export function loopbackListener(greeting: string): Listener & { port: number } {
  const server = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: greeter(greeting) });
  return { port: server.port, stop: () => server.stop(true) };
}

/** A System V shared memory segment of the host's (util-linux's ipcmk), readable by its owner. */
export function sysvSegment(): { id: number; remove(): void } {
  const made = Bun.spawnSync(["ipcmk", "-M", "4096", "-p", "0600"], { stdout: "pipe", stderr: "pipe" });
  const id = /(\d+)\s*$/.exec(made.stdout.toString())?.[1];
  if (made.exitCode !== 0 || id === undefined) throw new Error(`ipcmk failed (util-linux): ${made.stderr.toString()}`);
  return { id: Number(id), remove: () => void Bun.spawnSync(["ipcrm", "-m", id]) };
}

/** A host path, and where the old layout showed it: neither may exist in a guest that was not granted it. */
export const hostRoutes = (path: string) => [path, `${HOST_VIEW}${path}`];

/** A directory for a test's host files, private to it and removed by `done`. */
export function scratch(prefix: string, parent = tmpdir()): { dir: string; done(): void } {
  const dir = mkdtempSync(join(parent, `${prefix}-`));
  chmodSync(dir, 0o755);
  return { dir, done: () => rmSync(dir, { recursive: true, force: true }) };
}
