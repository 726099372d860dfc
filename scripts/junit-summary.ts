// Prints `N passed, M failed` from Bun's JUnit reports; the last argument is the runs'
// combined exit status, so a run that broke before reporting still counts as a failure.
import { existsSync, readFileSync } from "node:fs";

const args = Bun.argv.slice(2);
const status = Number(args.pop());
let passed = 0;
let failed = 0;
for (const file of args) {
  if (!existsSync(file)) {
    console.log(`test: no report ${file}`);
    failed += 1;
    continue;
  }
  const head = /<testsuites\b[^>]*>/.exec(readFileSync(file, "utf8"))?.[0] ?? "";
  const count = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(head)?.[1] ?? 0);
  const tests = count("tests");
  const failures = count("failures");
  passed += tests - failures - count("skipped");
  failed += failures;
}
if (status !== 0 && failed === 0) failed = 1; // the runner failed outside any test
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
