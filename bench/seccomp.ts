// What the seccomp filter costs: bwrap starting `true` with and without `--seccomp`, and the
// per-call cost of a call the filter inspects (ioctl) against one it never sees (getppid,
// which the kernel's per-number cache lets through without running the filter).
//     node_modules/.bin/bun bench/seccomp.ts [--runs 50]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { seccompArch, seccompProgram } from "../plugins/seccomp/filter.ts";
import { compare, report } from "./lib.ts";

const { values } = parseArgs({ options: { runs: { type: "string", default: "50" } } });
const runs = Number(values.runs);
const arch = seccompArch();
const bwrap = join(import.meta.dir, `../toolset/out/${arch}/bin/bwrap`);
const dir = mkdtempSync(join(tmpdir(), "fim-bench-seccomp-"));
try {
  const filter = join(dir, "filter.bpf");
  const started = performance.now();
  const program = seccompProgram({ arch, allowUserNamespaces: false, fakeOwnership: false });
  const generation = performance.now() - started;
  writeFileSync(filter, program);
  console.log(`filter: ${program.length / 8} instructions, looked up in ${generation.toFixed(2)} ms (built into the launcher by a macro)`);

  // Both through sh, so that only --seccomp differs.
  const sandbox = (extra: string) => ["sh", "-c", `exec 9<${filter}; exec ${bwrap} --unshare-user --dev-bind / / ${extra} true`];
  report(compare({ "bwrap true": sandbox(""), "bwrap --seccomp true": sandbox("--seccomp 9") }, runs), "bwrap true");

  const gcc = Bun.which("gcc");
  if (!gcc) console.log("per-call cost: skipped (gcc is missing: apt-get install gcc)");
  else {
    const source = join(dir, "calls.c");
    writeFileSync(
      source,
      `#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e9 + t.tv_nsec; }
int main(void) {
  const int n = 1000000;
  struct winsize w;
  double t0 = now();
  for (int i = 0; i < n; i++) getppid();
  double t1 = now();
  for (int i = 0; i < n; i++) ioctl(0, TIOCGWINSZ, &w);
  double t2 = now();
  printf("%.1f %.1f\\n", (t1 - t0) / n, (t2 - t1) / n);
  return 0;
}
`,
    );
    const calls = join(dir, "calls");
    if (Bun.spawnSync([gcc, "-O2", "-o", calls, source]).exitCode !== 0) throw new Error("compiling the per-call probe failed");
    const measure = (extra: string) => {
      const result = Bun.spawnSync(["sh", "-c", `exec 9<${filter}; exec ${bwrap} --unshare-user --dev-bind / / ${extra} ${calls} </dev/null`], { stdout: "pipe" });
      return result.stdout.toString().trim().split(" ").map(Number) as [number, number];
    };
    const [plainPpid, plainIoctl] = measure("");
    const [filteredPpid, filteredIoctl] = measure("--seccomp 9");
    console.log(`getppid: ${plainPpid} ns without the filter, ${filteredPpid} ns with it (never runs the filter)`);
    console.log(`ioctl:   ${plainIoctl} ns without the filter, ${filteredIoctl} ns with it (runs the filter)`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
