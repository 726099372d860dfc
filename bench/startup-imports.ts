// What loading the launcher's modules costs before any of its code runs: compiled the way a
// launcher is (scripts/compile.ts), a trivial program, one that imports node:fs, and one that
// imports a bundle's plugins and the core without calling them, side by side. The difference
// is the floor of every command's start-up that only less code at start-up can lower.
//   bun bench/startup-imports.ts [bundle]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { compileLauncher } from "../scripts/compile.ts";
import { compare, report } from "./lib.ts";

const root = resolve(import.meta.dir, "..");
const bundle = Bun.argv[2] ?? "blueprint";
const dir = mkdtempSync(join(tmpdir(), "fim-bench-imports-"));
// A branch that never runs keeps the imports (and nothing runs but their modules' own code).
const never = "process.env.FIM_BENCH_NEVER === '1'";
const programs: Record<string, string> = {
  "trivial program": `if (${never}) console.log(0);\n`,
  "importing node:fs": `import { readFileSync } from "node:fs";\nif (${never}) console.log(readFileSync);\n`,
  [`importing the ${bundle} launcher`]: [
    `import { main } from ${JSON.stringify(`${root}/core/main.ts`)};`,
    `import bundle from ${JSON.stringify(`${root}/bundles/${bundle}/index.ts`)};`,
    `if (${never}) void main(bundle);`,
    "",
  ].join("\n"),
};
try {
  const commands: Record<string, string[]> = {};
  for (const [index, [name, source]] of Object.entries(programs).entries()) {
    const entry = join(dir, `program${index}.ts`);
    writeFileSync(entry, source);
    const built = await compileLauncher(entry, join(dir, `program${index}`));
    if (!built.success) throw new Error(`${name}: ${built.logs.join("\n")}`);
    commands[name] = [join(dir, `program${index}`)];
  }
  report(compare(commands, 100), "trivial program");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
