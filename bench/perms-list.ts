// `fim-perms list` against a trivial Bun-compiled program (issue: at most 2x).
//   bun bench/perms-list.ts [image]
import { mkdtempSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
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
  const image = join(dir, "app.flatimage");
  copyFileSync(source, image);
  Bun.spawnSync([image, "fim-perms", "set", "home,network,gpu"]);
  const timings = compare({ "trivial bun program": [join(dir, "trivial")], "fim-perms list": [image, "fim-perms", "list"] }, 100);
  report(timings, "trivial bun program");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
