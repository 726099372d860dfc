// Commit of a 200 MB directory against the raw layer tool on the same directory, side by
// side; then the start-up cost of each extra layer (mount-to-ready) from runs with 1 and 6.
//   bun bench/commit.ts [image]
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { benchImage, compare, report } from "./lib.ts";
import { compressionOptions } from "../plugins/layer-erofs/index.ts";

const { dir, image, run } = benchImage("commit");

try {
  // 200 MB: 1000 files of 200 KB, half text-like (compressible), half random.
  const tree = join(dir, "tree");
  for (let i = 0; i < 1000; i++) {
    const sub = join(tree, `d${i % 20}`);
    mkdirSync(sub, { recursive: true });
    const content = i % 2 === 0 ? Buffer.from(`line ${i} of some fairly repetitive text content\n`.repeat(4200)).subarray(0, 200 * 1024) : randomBytes(200 * 1024);
    writeFileSync(join(sub, `f${i}`), content);
  }
  run("fim-exec", "true");
  run("fim-env", "set", "BIN=$FIM_DIR_APP_BIN");
  const bin = run("fim-env", "list").trim().slice("BIN=".length);
  run("fim-env", "clear");
  const upper = join(dir, ".app.flatimage.data/root");
  const level = 7;

  // Each commit empties the upper directory: refill it before every timed run.
  writeFileSync(join(dir, "commit.sh"), `set -e\nrm -rf ${upper} ${dir}/out.layer\ncp -r ${tree} ${upper}\n${image} fim-layer commit file ${dir}/out.layer >/dev/null\n`);
  writeFileSync(join(dir, "raw.sh"), `set -e\nrm -rf ${upper} ${dir}/raw.layer\ncp -r ${tree} ${upper}\n${bin}/mkfs.erofs ${compressionOptions(level).join(" ")} --all-root --quiet ${dir}/raw.layer ${upper}\n`);
  console.log("commit of 200 MB (each run includes the same copy of the tree into the upper directory):");
  report(compare({ "mkfs.erofs by hand": ["bash", join(dir, "raw.sh")], "fim-layer commit": ["bash", join(dir, "commit.sh")] }, 5, 1), "mkfs.erofs by hand");
  const copyOnly = compare({ copy: ["bash", "-c", `rm -rf ${upper}; cp -r ${tree} ${upper}`] }, 5, 1)[0]!;
  console.log(`(the copy alone: median ${copyOnly.median.toFixed(0)} ms)`);

  // Mount-to-ready per layer: runs with 1 and with 6 layers.
  const small = join(dir, "small");
  mkdirSync(join(small, "etc"), { recursive: true });
  writeFileSync(join(small, "etc/x"), "x");
  run("fim-layer", "create", small, join(dir, "small.layer"));
  run("fim-layer", "add", join(dir, "small.layer"));
  const one = compare({ "1 layer": [image, "fim-exec", "true"] }, 20, 3)[0]!;
  for (let i = 0; i < 5; i++) run("fim-layer", "add", join(dir, "small.layer"));
  const six = compare({ "6 layers": [image, "fim-exec", "true"] }, 20, 3)[0]!;
  console.log(`\nfim-exec true: 1 layer ${one.median.toFixed(1)} ms, 6 layers ${six.median.toFixed(1)} ms: ${((six.median - one.median) / 5).toFixed(1)} ms per extra layer (mount-to-ready)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
