// Build-time helpers for bundles bootstrapped from an official root-filesystem tarball
// (alpine, arch). FIM_ROOTFS_TARBALL (a path or URL) replaces the official tarball, e.g. to
// build from a mirror or a local copy.
import { execa } from "execa";
import { createWriteStream, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";

export function tarballSource(official: string): string {
  return process.env.FIM_ROOTFS_TARBALL || official;
}

/** The cache key part of a tarball: its location, and for a local file its size and time. */
export function tarballKey(official: string): string {
  const source = tarballSource(official);
  if (/^https?:\/\//.test(source) || !existsSync(source)) return source;
  const info = statSync(source);
  return `${source}:${info.size}:${info.mtimeMs}`;
}

/** A local copy of the tarball (downloaded with progress when it is a URL). */
export async function fetchTarball(source: string, into: string, progress: (text: string) => void): Promise<string> {
  if (!/^https?:\/\//.test(source)) {
    if (!existsSync(source)) throw new Error(`step 'fetch': the root filesystem tarball '${source}' does not exist`);
    return source;
  }
  progress(`downloading ${source}`);
  let response: Response;
  try {
    response = await fetch(source, { signal: AbortSignal.timeout(10 * 60_000) });
  } catch (error) {
    throw new Error(`step 'download': could not fetch ${source}: ${(error as Error).message}`);
  }
  if (!response.ok || !response.body) throw new Error(`step 'download': ${source} answered ${response.status} ${response.statusText}`);
  const total = Number(response.headers.get("content-length") ?? 0);
  const file = `${into}/rootfs.tarball`;
  const out = createWriteStream(file);
  let done = 0;
  let shown = 0;
  for await (const chunk of response.body) {
    out.write(chunk);
    done += chunk.length;
    if (done - shown > 4 * 1024 * 1024) {
      shown = done;
      progress(total ? `downloaded ${Math.round((100 * done) / total)}% of ${(total / 1048576).toFixed(1)} MiB` : `downloaded ${(done / 1048576).toFixed(1)} MiB`);
    }
  }
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
  return file;
}

/** Extracts a tarball (compression detected by tar) into `dir`. */
export async function extract(tarball: string, dir: string, extraArgs: string[] = []): Promise<void> {
  const result = await execa("tar", ["-xf", tarball, "-C", dir, "--no-same-owner", ...extraArgs], { reject: false, all: true });
  if (result.failed) throw new Error(`step 'extract': tar failed on '${tarball}': ${String(result.all ?? "").trim().split("\n").slice(-5).join(" / ")}`);
}

/** What every image needs (reference §17.2): bind targets and mount points, and /fim/config. */
export function baseTree(dir: string): void {
  for (const path of ["fim/config", "tmp", "proc", "sys", "dev", "run/media", "mnt", "media", "home", "root", "etc"]) mkdirSync(`${dir}/${path}`, { recursive: true });
  for (const file of ["host.conf", "hosts", "passwd", "group", "nsswitch.conf", "resolv.conf"]) {
    const path = `${dir}/etc/${file}`;
    if (!existsSync(path) || file === "resolv.conf") writeFileSync(path, "");
  }
}
