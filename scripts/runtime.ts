// The glibc loader and libraries the launcher (Bun's compiled executable) is linked against,
// taken from the build host (Debian 12's libc6): the stub extracts them with the launcher and
// runs it through that loader, so an image needs no glibc on the host.
import { existsSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { BootInput, Provenance } from "./assemble.ts";

/** Licenses of the Debian source packages the libraries come from. */
const LICENSES: Record<string, string> = {
  glibc: "LGPL-2.1-or-later",
  "gcc-12": "GPL-3.0-or-later WITH GCC-exception-3.1",
};

function debianProvenance(path: string): Provenance {
  const owner = Bun.spawnSync(["dpkg", "-S", path], { stdout: "pipe", stderr: "ignore" });
  const pkg = owner.exitCode === 0 ? owner.stdout.toString().split(":")[0]!.trim() : "";
  const query = pkg ? Bun.spawnSync(["dpkg-query", "-W", "-f=${Version}\t${source:Package}\t${source:Version}", pkg], { stdout: "pipe", stderr: "ignore" }) : undefined;
  if (!query || query.exitCode !== 0) return { version: "unknown", source: `${path} of the build host`, licenses: [] };
  const [version = "", source = pkg, sourceVersion = version] = query.stdout.toString().split("\t");
  const spdx = LICENSES[source] ?? LICENSES[source.replace(/-\d+$/, "")] ?? "see the copyright file";
  return {
    version,
    source: `${source} ${sourceVersion} (binary package ${pkg} ${version}, from the build host)`,
    licenses: [{ type: spdx, url: `https://sources.debian.org/src/${source}/${sourceVersion}/debian/copyright/` }],
  };
}

// The loader preloads every library /etc/ld.so.preload names, into any program it starts: the
// host's file would put host libraries into the launcher. The path in our copy names nothing
// (a file below /dev/null cannot exist); same length, so nothing else in the file moves.
const PRELOAD_FILE = "/etc/ld.so.preload\0";
const NO_PRELOAD_FILE = "/dev/null/fim-none\0";

/** A copy of the loader, in `work`, that reads no preload file. */
function loaderWithoutPreloadFile(path: string, work: string): string {
  const bytes = readFileSync(path);
  const [from, to] = [Buffer.from(PRELOAD_FILE), Buffer.from(NO_PRELOAD_FILE)];
  let at = bytes.indexOf(from);
  if (at < 0) throw new Error(`${path} does not name ${PRELOAD_FILE.slice(0, -1)}: this loader is not one the build knows how to keep from host preloads`);
  for (; at >= 0; at = bytes.indexOf(from, at + from.length)) to.copy(bytes, at);
  const copy = join(work, basename(path));
  writeFileSync(copy, bytes, { mode: 0o755 });
  return copy;
}

/**
 * The launcher's loader and libraries (from `ldd`), plus libgcc_s, which glibc loads on demand
 * (thread cancellation unwinds through it). Each goes to lib/<soname>; the loader is a copy made
 * in `work` that reads no /etc/ld.so.preload.
 */
export function runtimeLibraries(launcher: string, work: string): { loader: string; libraries: BootInput[] } {
  const listed = Bun.spawnSync(["ldd", launcher], { stdout: "pipe", stderr: "pipe" });
  if (listed.exitCode !== 0) throw new Error(`ldd ${launcher} failed (a glibc build host is needed): ${listed.stderr.toString()}`);
  let loader: string | undefined;
  const libraries: BootInput[] = [];
  const add = (name: string, path: string, mode: number) => {
    if (libraries.some((library) => library.path === `lib/${name}`)) return;
    libraries.push({ path: `lib/${name}`, file: realpathSync(path), mode, provenance: debianProvenance(path) });
  };
  for (const line of listed.stdout.toString().split("\n")) {
    const linked = /^\s*(\S+) => (\/\S+) \(/.exec(line);
    const interpreter = /^\s*(\/\S+) \(/.exec(line);
    if (linked) add(linked[1]!, linked[2]!, 0o644);
    else if (interpreter) {
      loader = `lib/${basename(interpreter[1]!)}`;
      add(basename(interpreter[1]!), interpreter[1]!, 0o755);
      const entry = libraries.find((library) => library.path === loader)!;
      entry.file = loaderWithoutPreloadFile(entry.file, work);
      entry.provenance = { ...entry.provenance, source: `${entry.provenance.source}; its preload file's path replaced by one that names nothing` };
    }
  }
  if (!loader) throw new Error(`ldd found no program interpreter in ${launcher}`);
  const libc = libraries.find((library) => library.path === "lib/libc.so.6");
  if (libc) {
    const gcc = `${dirname(libc.file)}/libgcc_s.so.1`;
    if (existsSync(gcc)) add("libgcc_s.so.1", gcc, 0o644);
  }
  return { loader, libraries };
}
