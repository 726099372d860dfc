// `fim-exec true` against the same pipeline written by hand with the same embedded tools
// (namespace holder, FUSE mounts of the layers, kernel overlay, bwrap with the same base
// operations, true; the mounts go away with the namespace), side by side in one run; a
// start beside a running instance (it joins the mounts) against a start that mounts; then
// the memory (RSS) of every process that stays alive while a guest runs.
//   bun bench/run.ts [image]
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { benchImage, compare, report } from "./lib.ts";

const { dir, image, run } = benchImage("run");

try {
  // A layer over the base one, like a real image.
  const src = join(dir, "layer.src");
  mkdirSync(join(src, "etc"), { recursive: true });
  writeFileSync(join(src, "etc/hello"), "hello\n");
  run("fim-layer", "create", src, join(dir, "one.layer"));
  run("fim-layer", "add", join(dir, "one.layer"));
  run("fim-exec", "true"); // extracts the tools
  run("fim-env", "set", "BIN=$FIM_DIR_APP_BIN");
  const bin = run("fim-env", "list").trim().slice("BIN=".length);
  run("fim-env", "clear");
  // Every layer, lowest first (as fim-layer list gives them).
  const offsets = run("fim-layer", "list").trim().split("\n").map((line) => line.split(":")[1]!);
  const mounts = offsets.map((offset, i) => `${bin}/erofsfuse --offset=${offset} ${image} '$m'/layer${i} >/dev/null 2>&1`).join("\n  ");
  // The kernel's lowerdir lists the top layer first.
  const lowers = offsets.map((_, i) => `'$m'/layer${i}`).reverse().join(":");

  const work = join(dir, "manual");
  // The same work as a run: a namespace holding the layers' FUSE mounts and the kernel
  // overlay, then the guest's bwrap with the same base operations (private /tmp, own
  // network namespace, read-only tools), then true.
  const script = `set -e
m=${work}/$$; mkdir -p ${offsets.map((_, i) => `$m/layer${i}`).join(" ")} $m/upper $m/work $m/root
${bin}/bwrap --unshare-user --unshare-pid --as-pid-1 --uid 0 --gid 0 --cap-add ALL --dev-bind / / --proc /proc --die-with-parent -- ${bin}/bash -c '
  ${mounts}
  ${bin}/busybox mount -t overlay overlay -o lowerdir=${lowers},upperdir='$m'/upper,workdir='$m'/work,userxattr '$m'/root
  ${bin}/bwrap --unshare-user --uid ${process.getuid!()} --gid ${process.getgid!()} --unshare-net --bind '$m'/root / \\
    --dev /dev --proc /proc --tmpfs /tmp --ro-bind /sys /sys --ro-bind-try /etc/group /etc/group --ro-bind ${bin} ${bin} --ro-bind ${bin}/../sbin ${bin}/../sbin --setenv PATH ${bin}/../sbin -- ${bin}/bash -c "exec true"'
chmod 700 $m/work/work 2>/dev/null || true; rm -rf $m
`;
  writeFileSync(join(dir, "manual.sh"), script);

  const timings = compare({ "by hand (same tools)": ["bash", join(dir, "manual.sh")], "fim-exec true": [image, "fim-exec", "true"] }, 30, 3);
  report(timings, "by hand (same tools)");

  // A start beside a running instance joins its mounts; one on another data directory mounts.
  console.log("\nbeside a running instance (same data directory) against a start that mounts:");
  const holder = Bun.spawn([image, "fim-exec", "sleep", "600"], { stdout: "ignore", stderr: "ignore" });
  for (let i = 0; i < 200 && !run("fim-instance", "list").trim(); i++) await Bun.sleep(10);
  const other = join(dir, "other.data");
  const joined = compare({ "fim-exec true (mounts)": ["env", `FIM_DIR_DATA=${other}`, image, "fim-exec", "true"], "fim-exec true (joins)": [image, "fim-exec", "true"] }, 30, 3);
  report(joined, "fim-exec true (mounts)");
  holder.kill();
  await holder.exited;

  // Memory of the processes alive while a guest runs.
  const guest = Bun.spawn([image, "fim-exec", "sleep", "3"], { stdout: "ignore", stderr: "ignore" });
  await Bun.sleep(1500);
  const tree = new Map<number, number[]>();
  const info = new Map<number, { name: string; rss: number }>();
  for (const name of readdirSync("/proc").filter((entry) => /^\d+$/.test(entry))) {
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      const ppid = Number(/^PPid:\s+(\d+)/m.exec(status)![1]);
      const rss = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const comm = /^Name:\s+(.*)$/m.exec(status)![1]!;
      info.set(Number(name), { name: comm, rss });
      tree.set(ppid, [...(tree.get(ppid) ?? []), Number(name)]);
    } catch {
      // gone
    }
  }
  console.log("\nprocesses alive while `fim-exec sleep 3` runs (RSS):");
  let total = 0;
  const walk = (pid: number, depth: number) => {
    const entry = info.get(pid);
    if (entry) {
      console.log(`${"  ".repeat(depth)}${entry.name.padEnd(20 - 2 * depth)} ${(entry.rss / 1024).toFixed(1).padStart(6)} MiB`);
      total += entry.rss;
    }
    for (const child of tree.get(pid) ?? []) walk(child, depth + 1);
  };
  walk(guest.pid, 0);
  console.log(`${"total".padEnd(20)} ${(total / 1024).toFixed(1).padStart(6)} MiB`);
  await guest.exited;
} finally {
  // The kernel leaves an overlay's work/work with mode 000.
  Bun.spawnSync(["chmod", "-R", "u+rwx", dir]);
  rmSync(dir, { recursive: true, force: true });
}
