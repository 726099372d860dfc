// Compressed read-only layer formats, measured side by side on a real Debian 12 minbase rootfs.
//   node_modules/.bin/bun bench/layer-formats.ts [--runs N] [--user NAME] [--only REGEX-on-id]   (as root)
// Images are built as root; FUSE mounts and all reads through them run as the regular user
// (default `fimtest`) via `runuser`, using the host's setuid /usr/bin/fusermount3.
// Page caches are dropped as root (echo 3 > /proc/sys/vm/drop_caches) before every cold measurement.
// Results: see docs/layer-formats.md.
import { chownSync, closeSync, existsSync, mkdirSync, openSync, readdirSync, readSync, renameSync, rmSync, statfsSync, statSync, writeFileSync, appendFileSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const FUSE_SUPER_MAGIC = 0x65735546;
const PROBE = "etc/debian_version"; // a known file: the mount is "ready" once it is visible

// ---------------------------------------------------------------------------------------------
// Helper mode: runs as the regular user, does the timing-sensitive part, prints JSON.
// ---------------------------------------------------------------------------------------------
if (Bun.argv[2] === "--helper") {
  const [, , , cmd, ...args] = Bun.argv;
  const buf = Buffer.allocUnsafe(1 << 20);
  const readAll = (path: string): number => {
    const fd = openSync(path, "r");
    let total = 0;
    try {
      for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) total += n;
    } finally {
      closeSync(fd);
    }
    return total;
  };
  if (cmd === "mount") {
    // mount <erofsfuse> <image> <mountpoint> [erofsfuse args...]: spawn (daemonizing) erofsfuse,
    // poll until statfs says FUSE and the probe file is visible.
    const [bin, image, mnt, ...extra] = args as [string, string, string, ...string[]];
    const t0 = performance.now();
    const r = Bun.spawnSync([bin, ...extra, image, mnt], { stdout: "pipe", stderr: "pipe" });
    const probe = join(mnt, PROBE);
    let ok = false;
    // erofsfuse forks into the background only once mounted, and exits 0 even for rejected
    // -o options, so after it returns poll for at most 2 s.
    const t1 = performance.now();
    while (r.exitCode === 0 && performance.now() - t1 < 2_000) {
      try {
        if (statfsSync(mnt).type === FUSE_SUPER_MAGIC && existsSync(probe)) { ok = true; break; }
      } catch {}
    }
    const ms = performance.now() - t0;
    console.log(JSON.stringify({ ok, ms, exitCode: r.exitCode, out: (r.stdout.toString() + r.stderr.toString()).trim() }));
  } else if (cmd === "seq") {
    const t0 = performance.now();
    const bytes = readAll(args[0]!);
    console.log(JSON.stringify({ bytes, ms: performance.now() - t0 }));
  } else if (cmd === "small") {
    const t0 = performance.now();
    let files = 0, bytes = 0;
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) { bytes += readAll(p); files++; }
      }
    };
    walk(args[0]!);
    console.log(JSON.stringify({ files, bytes, ms: performance.now() - t0 }));
  } else if (cmd === "stat") {
    const s = statSync(args[0]!);
    console.log(JSON.stringify({ uid: s.uid, gid: s.gid, mode: s.mode }));
  }
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Main mode (root)
// ---------------------------------------------------------------------------------------------
const argOf = (name: string, dflt: string): string => {
  const i = Bun.argv.indexOf(name);
  return i > 0 && Bun.argv[i + 1] ? Bun.argv[i + 1]! : dflt;
};
const RUNS = Number(argOf("--runs", "3"));
const USER = argOf("--user", "fimtest");
const ROOT = resolve(import.meta.dir, "..");
const BIN = join(ROOT, "toolset/out/x86_64/bin");
const CACHE = join(ROOT, ".cache/bench");
const ROOTFS = join(CACHE, "rootfs-minbase");
const WORK = join(CACHE, "layer-formats");
const BIG_MIB = 200;
const started = performance.now();

if (process.getuid?.() !== 0) throw new Error("run as root (needs debootstrap, drop_caches, runuser)");
const log = (msg: string): void => console.error(`[${((performance.now() - started) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

function run(cmd: string[], opts: { cwd?: string; allowFail?: boolean; inherit?: boolean } = {}) {
  const r = Bun.spawnSync(cmd, { cwd: opts.cwd, stdout: opts.inherit ? "inherit" : "pipe", stderr: opts.inherit ? "inherit" : "pipe" });
  const out = r.stdout?.toString() ?? "";
  const err = r.stderr?.toString() ?? "";
  if (r.exitCode !== 0 && !opts.allowFail) throw new Error(`${cmd.join(" ")} failed (${r.exitCode}): ${err || out}`);
  return { code: r.exitCode, out, err };
}
function timed(cmd: string[], cwd?: string): number {
  const t0 = performance.now();
  run(cmd, { cwd });
  return (performance.now() - t0) / 1000;
}
function asUser<T>(...args: string[]): T {
  const r = run(["runuser", "-u", USER, "--", process.execPath, join(ROOT, "bench/layer-formats.ts"), "--helper", ...args], { cwd: "/" });
  return JSON.parse(r.out.trim().split("\n").pop()!) as T;
}
function dropCaches(): void {
  run(["sync"]);
  writeFileSync("/proc/sys/vm/drop_caches", "3\n");
}
function isMounted(mnt: string): boolean {
  return readFileSync("/proc/self/mountinfo", "utf8").split("\n").some((l) => l.split(" ")[4] === mnt);
}
function unmount(mnt: string): void {
  if (!isMounted(mnt)) return;
  const r = run(["runuser", "-u", USER, "--", "/usr/bin/fusermount3", "-u", mnt], { allowFail: true });
  if (r.code !== 0) run(["umount", "-l", mnt], { allowFail: true });
  for (let i = 0; i < 200 && isMounted(mnt); i++) Bun.sleepSync(10);
}
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const MiB = 1024 * 1024;

// --- 1. rootfs (cached) ---------------------------------------------------------------------
if (!existsSync(join(ROOTFS, "etc/debian_version"))) {
  if (!Bun.which("debootstrap")) {
    log("installing debootstrap (apt-get)");
    run(["apt-get", "update", "-qq"], { inherit: true });
    run(["apt-get", "install", "-y", "-qq", "debootstrap"], { inherit: true });
  }
  const tmp = `${ROOTFS}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(CACHE, { recursive: true });
  log(`debootstrap --variant=minbase bookworm ${tmp} (one-off, cached)`);
  const t = timed(["debootstrap", "--variant=minbase", "bookworm", tmp, "http://deb.debian.org/debian"]);
  renameSync(tmp, ROOTFS);
  log(`debootstrap done in ${t.toFixed(0)} s`);
} else log(`reusing cached rootfs ${ROOTFS}`);

const apparent = Number(run(["du", "-sb", ROOTFS]).out.split(/\s/)[0]);
const countOf = (args: string[]) => Number(run(["sh", "-c", `find ${args.join(" ")} | wc -l`]).out.trim());
const fileCount = countOf([ROOTFS, "-xdev", "-type", "f"]);
const entryCount = countOf([ROOTFS, "-xdev"]);
const usrFiles = countOf([join(ROOTFS, "usr"), "-type", "f"]);
const usrBytes = run(["find", join(ROOTFS, "usr"), "-type", "f", "-printf", "%s\\n"]).out.trim().split("\n").reduce((a, b) => a + Number(b), 0);
log(`rootfs: ${apparent} bytes apparent (${(apparent / MiB).toFixed(1)} MiB), ${fileCount} regular files, ${entryCount} entries; /usr: ${usrFiles} files, ${(usrBytes / MiB).toFixed(1)} MiB`);

// --- 2. big.bin: 200 MiB of real data (the rootfs's /usr files concatenated, repeated) ------
mkdirSync(WORK, { recursive: true, mode: 0o755 });
const BIGSRC = join(WORK, "bigsrc");
const BIG = join(BIGSRC, "bench/big.bin");
if (!existsSync(BIG) || statSync(BIG).size !== BIG_MIB * MiB) {
  log(`building ${BIG} (${BIG_MIB} MiB of concatenated /usr files)`);
  mkdirSync(join(BIGSRC, "bench"), { recursive: true });
  mkdirSync(join(BIGSRC, "etc"), { recursive: true });
  writeFileSync(join(BIGSRC, PROBE), "12\n");
  const files = run(["sh", "-c", `cd ${ROOTFS} && find usr -type f | LC_ALL=C sort`]).out.trim().split("\n");
  writeFileSync(BIG, "");
  let size = 0;
  outer: for (;;) {
    for (const f of files) {
      let data = readFileSync(join(ROOTFS, f));
      if (size + data.length > BIG_MIB * MiB) data = data.subarray(0, BIG_MIB * MiB - size);
      appendFileSync(BIG, data);
      size += data.length;
      if (size >= BIG_MIB * MiB) break outer;
    }
  }
}
run(["chmod", "-R", "a+rX", WORK]);

// --- 3. candidates ---------------------------------------------------------------------------
interface Candidate { id: string; label: string; kind: "erofs" | "squashfs"; args: string[] }
const erofs = (id: string, label: string, ...args: string[]): Candidate => ({ id, label, kind: "erofs", args });
const squash = (id: string, label: string, ...args: string[]): Candidate => ({ id, label, kind: "squashfs", args });
const allCandidates: Candidate[] = [
  erofs("erofs-none", "erofs uncompressed"),
  erofs("erofs-lz4", "erofs lz4", "-zlz4"),
  erofs("erofs-lz4hc9", "erofs lz4hc (9, default)", "-zlz4hc"),
  erofs("erofs-lz4hc12", "erofs lz4hc,12", "-zlz4hc,level=12"),
  erofs("erofs-lz4hc12-C64k", "erofs lz4hc,12 -C65536", "-zlz4hc,level=12", "-C65536"),
  erofs("erofs-lz4hc12-C64k-tail", "erofs lz4hc,12 -C65536 -Eztailpacking", "-zlz4hc,level=12", "-C65536", "-Eztailpacking"),
  erofs("erofs-zstd3", "erofs zstd,3 (default)", "-zzstd,level=3"),
  erofs("erofs-zstd3-C64k", "erofs zstd,3 -C65536", "-zzstd,level=3", "-C65536"),
  erofs("erofs-zstd15", "erofs zstd,15", "-zzstd,level=15"),
  erofs("erofs-lzma6", "erofs lzma (6, default)", "-zlzma"),
  erofs("erofs-lzma6-C64k", "erofs lzma -C65536", "-zlzma", "-C65536"),
  erofs("erofs-lzma6-C64k-frag", "erofs lzma -C65536 -Eztailpacking,fragments", "-zlzma", "-C65536", "-Eztailpacking,fragments"),
  // mksquashfs is pinned to 1 thread: mkfs.erofs 1.8.6 here is single-threaded too (no --workers).
  squash("sqfs-zstd", "squashfs zstd (15, default) 128K", "-comp", "zstd", "-processors", "1"),
  squash("sqfs-xz", "squashfs xz 128K", "-comp", "xz", "-processors", "1"),
];
const only = new RegExp(argOf("--only", "."));
const candidates = allCandidates.filter((c) => only.test(c.id));
// Builds slower than this are timed once and the image is reused by the later runs.
const REBUILD_UNDER_S = 30;

function build(c: Candidate, src: string, out: string): number {
  rmSync(out, { force: true });
  const cmd = c.kind === "erofs"
    ? [join(BIN, "mkfs.erofs"), "--quiet", "-T0", "--all-time", ...c.args, out, src]
    : [join(BIN, "mksquashfs"), src, out, "-quiet", "-no-progress", "-noappend", "-all-time", "0", ...c.args];
  const s = timed(cmd);
  run(["chmod", "0644", out]);
  return s;
}

const MNT = join(WORK, "mnt");
mkdirSync(MNT, { recursive: true });
chownSync(MNT, Number(run(["id", "-u", USER]).out), Number(run(["id", "-g", USER]).out));
unmount(MNT);
const EROFSFUSE = join(BIN, "erofsfuse");

interface Mount { ok: boolean; ms: number; exitCode: number; out: string }
function mount(image: string, extra: string[] = []): Mount {
  const m = asUser<Mount>("mount", EROFSFUSE, image, MNT, ...extra);
  if (!m.ok) unmount(MNT);
  return m;
}

// big.bin images: built once per mountable candidate (not part of the timed create column)
const IMG = join(WORK, "img");
rmSync(IMG, { recursive: true, force: true });
mkdirSync(IMG, { recursive: true });
const bigImage: Record<string, { path: string; size: number; s: number }> = {};
for (const c of candidates) {
  if (c.kind !== "erofs") continue;
  const path = join(IMG, `${c.id}-big.img`);
  log(`big.bin image ${c.label}`);
  const s = build(c, BIGSRC, path);
  bigImage[c.id] = { path, size: statSync(path).size, s };
}

interface Sample { create: number; size: number; mountMs?: number; smallFps?: number; seqCold?: number; seqWarm?: number }
const samples: Record<string, Sample[]> = Object.fromEntries(candidates.map((c) => [c.id, []]));
for (let rep = 1; rep <= RUNS; rep++) {
  for (const c of candidates) {
    log(`run ${rep}/${RUNS} ${c.label}`);
    const img = join(IMG, `${c.id}-rootfs.img`);
    const first = samples[c.id]![0];
    const create = first && first.create >= REBUILD_UNDER_S ? first.create : build(c, ROOTFS, img);
    const sample: Sample = { create, size: statSync(img).size };
    if (c.kind === "erofs") {
      try {
        dropCaches();
        const m = mount(img);
        if (!m.ok) throw new Error(`mount failed: ${m.out}`);
        sample.mountMs = m.ms;
        dropCaches();
        const small = asUser<{ files: number; bytes: number; ms: number }>("small", join(MNT, "usr"));
        if (small.files !== usrFiles || small.bytes !== usrBytes) throw new Error(`small-file read mismatch: ${small.files} files/${small.bytes} B, expected ${usrFiles}/${usrBytes}`);
        sample.smallFps = small.files / (small.ms / 1000);
        unmount(MNT);

        const big = bigImage[c.id]!;
        if (!mount(big.path).ok) throw new Error("big image mount failed");
        dropCaches();
        const cold = asUser<{ bytes: number; ms: number }>("seq", join(MNT, "bench/big.bin"));
        const warm = asUser<{ bytes: number; ms: number }>("seq", join(MNT, "bench/big.bin"));
        if (cold.bytes !== BIG_MIB * MiB || warm.bytes !== BIG_MIB * MiB) throw new Error("short read of big.bin");
        sample.seqCold = cold.bytes / MiB / (cold.ms / 1000);
        sample.seqWarm = warm.bytes / MiB / (warm.ms / 1000);
      } finally {
        unmount(MNT);
      }
    }
    samples[c.id]!.push(sample);
  }
}

// --- 4. option probes --------------------------------------------------------------------------
const probes: string[] = [];
{
  const c = erofs("probe", "probe", "-zlz4hc");
  const img = join(IMG, "probe.img");
  build(c, ROOTFS, img);
  // layer embedded at an offset inside a bigger file
  const embedded = join(IMG, "embedded.bin");
  writeFileSync(embedded, Buffer.alloc(MiB, 0x5a));
  appendFileSync(embedded, readFileSync(img));
  run(["chmod", "0644", embedded]);
  for (const extra of [["--offset=1048576"], [], ["-o", "ro"], ["-o", "uid=0,gid=0"], ["-o", "allow_other"], ["-o", "auto_unmount"], ["-o", "default_permissions"]]) {
    const image = extra.length === 0 || extra[0] === "--offset=1048576" ? embedded : img;
    const m = mount(image, extra);
    const opts = m.ok ? readFileSync("/proc/self/mountinfo", "utf8").split("\n").find((l) => l.split(" ")[4] === MNT)?.split(" - ")[1] : "";
    unmount(MNT);
    probes.push(`erofsfuse ${[...extra, image === embedded ? "<1MiB junk + image>" : "<image>"].join(" ")}: ${m.ok ? "MOUNTED" : "not mounted"} (exit ${m.exitCode}) ${opts ?? ""} | ${m.out.replace(/\s+/g, " ")}`);
  }
  // mkfs.erofs ownership override and excludes, checked with dump.erofs
  const tiny = join(IMG, "tiny.img");
  for (const args of [["--force-uid=1001", "--force-gid=1001"], ["--uid-offset=100000", "--gid-offset=100000"], ["--all-root"], ["--exclude-path=passwd", "--exclude-regex=^apt"], ["--offset=4096"]]) {
    rmSync(tiny, { force: true });
    const r = run([join(BIN, "mkfs.erofs"), "--quiet", ...args, tiny, join(ROOTFS, "etc")], { allowFail: true });
    const off = args[0] === "--offset=4096" ? ["--offset=4096"] : [];
    // dump.erofs exits 0 even when the path is missing; look for its "Path :" header instead
    const dump = (p: string) => run([join(BIN, "dump.erofs"), ...off, `--path=${p}`, tiny], { allowFail: true }).out;
    const shadow = dump("/shadow").match(/Uid: (\d+)\s+Gid: (\d+)/);
    const passwd = dump("/passwd").includes("Path :");
    const apt = dump("/apt").includes("Path :");
    probes.push(`mkfs.erofs ${args.join(" ")}: exit ${r.code}${r.err ? ` (${r.err.trim().split("\n")[0]})` : ""}; /shadow uid:gid=${shadow ? `${shadow[1]}:${shadow[2]}` : "?"} (source 0:42), /etc/passwd present=${passwd}, /etc/apt present=${apt}`);
  }
  rmSync(IMG, { recursive: true, force: true });
}

// --- 5. report ---------------------------------------------------------------------------------
const f = (x: number | undefined, d = 0) => (x === undefined ? "n/a" : x.toFixed(d));
const med = (id: string, k: keyof Sample) => {
  const xs = samples[id]!.map((s) => s[k]).filter((x): x is number => x !== undefined);
  return xs.length ? median(xs) : undefined;
};
const lines: string[] = [];
lines.push(`rootfs: Debian 12 minbase, ${apparent} B apparent (du -sb, ${(apparent / MiB).toFixed(1)} MiB), ${fileCount} regular files, ${entryCount} entries; /usr: ${usrFiles} files, ${(usrBytes / MiB).toFixed(1)} MiB`);
lines.push(`medians of ${RUNS} interleaved runs (builds slower than ${REBUILD_UNDER_S} s timed once); mounts and reads as user '${USER}'`);
lines.push("");
lines.push("| format | ratio | size MiB | create s | mount-to-ready ms | seq MB/s cold | seq MB/s warm | small files/s cold | big.bin ratio |");
lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const c of candidates) {
  const size = med(c.id, "size")!;
  const big = bigImage[c.id];
  const na = c.kind === "squashfs" ? "not mountable" : undefined;
  lines.push(`| ${c.label} | ${(apparent / size).toFixed(2)} | ${(size / MiB).toFixed(1)} | ${f(med(c.id, "create"), 1)} | ${na ?? f(med(c.id, "mountMs"), 1)} | ${na ?? f(med(c.id, "seqCold"))} | ${na ?? f(med(c.id, "seqWarm"))} | ${na ?? f(med(c.id, "smallFps"))} | ${big ? (BIG_MIB * MiB / big.size).toFixed(2) : "n/a"} |`);
}
lines.push("");
lines.push("Spread over the runs (min–max):");
lines.push("");
lines.push("| format | create s | mount-to-ready ms | seq MB/s cold | seq MB/s warm | small files/s cold |");
lines.push("|---|---:|---:|---:|---:|---:|");
const range = (id: string, k: keyof Sample, d = 0) => {
  const xs = samples[id]!.map((s) => s[k]).filter((x): x is number => x !== undefined);
  return xs.length ? `${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)}` : "n/a";
};
for (const c of candidates) {
  lines.push(`| ${c.label} | ${range(c.id, "create", 1)} | ${range(c.id, "mountMs", 1)} | ${range(c.id, "seqCold")} | ${range(c.id, "seqWarm")} | ${range(c.id, "smallFps")} |`);
}
lines.push("");
lines.push("Option probes:");
for (const p of probes) lines.push(`- ${p}`);
lines.push("");
lines.push(`total run time: ${((performance.now() - started) / 1000).toFixed(0)} s`);
console.log(lines.join("\n"));
