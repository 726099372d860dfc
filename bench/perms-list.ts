// `fim-perms list` against a trivial Bun-compiled program (issue: at most 2x).
//   bun bench/perms-list.ts [image]
// How an executable was written decides the large folios the page cache keeps it in, and so
// how fast it starts: the image's launcher is written by the stub in 4 MiB pieces, the trivial
// program as `bun build` writes it (on Linux 6.18 7–18 % slower to start than a copy written at
// once). The ratio the issue asks for is against the latter; the last line is against the
// same program written at once, like the launcher.
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compare, report } from "./lib.ts";

const root = resolve(import.meta.dir, "..");
const source = resolve(Bun.argv[2] ?? join(root, "dist/blueprint.flatimage"));
const dir = mkdtempSync(join(tmpdir(), "fim-bench-"));
try {
  writeFileSync(join(dir, "trivial.ts"), "process.exit(0);\n");
  const built = Bun.spawnSync([process.execPath, "build", "--compile", join(dir, "trivial.ts"), "--outfile", join(dir, "trivial")], { stdout: "ignore", stderr: "pipe" });
  if (built.exitCode !== 0) throw new Error(built.stderr.toString());
  writeFileSync(join(dir, "trivial-rewritten"), readFileSync(join(dir, "trivial")));
  chmodSync(join(dir, "trivial-rewritten"), 0o755);
  const image = join(dir, "app.flatimage");
  copyFileSync(source, image);
  Bun.spawnSync([image, "fim-perms", "set", "home,network,gpu"]);
  const timings = compare({ "trivial bun program": [join(dir, "trivial")], "the same, written at once": [join(dir, "trivial-rewritten")], "fim-perms list": [image, "fim-perms", "list"] }, 100);
  report(timings, "trivial bun program");
  const [, rewritten, list] = timings;
  console.log(`fim-perms list against the trivial program written at once: ${(list!.median / rewritten!.median).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
