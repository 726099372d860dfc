// A plugin kept outside the repository adds a command without touching the core: it is
// compiled in with `npm run build -- <bundle> --plugin <file>`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, freshImage, lines, ROOT, type TestImage } from "../helpers/image.ts";

let outside: string;
let image: TestImage;

beforeAll(() => {
  outside = mkdtempSync(join(tmpdir(), "fim-plugin-"));
  // The plugin lives outside the repository; its type import points back at the runtime's API.
  const source = readFileSync(join(ROOT, "test/fixtures/hello-plugin/hello.ts"), "utf8").replace("../../../core/plugin.ts", join(ROOT, "core/plugin.ts"));
  writeFileSync(join(outside, "hello.ts"), source);
  buildImage("blueprint", join(outside, "hello.flatimage"), ["--plugin", join(outside, "hello.ts")]);
  image = freshImage(join(outside, "hello.flatimage"));
}, 120_000);

afterAll(() => {
  image?.cleanup();
  rmSync(outside, { recursive: true, force: true });
});

test("the plugin's command runs, logs through the runtime and appears in help", () => {
  const result = image.run(["fim-hello", "world"]);
  expect(result.code).toBe(0);
  expect(result.stdout).toContain("Hello, world! (BLUEPRINT)\n");
  expect(lines(result.stdout)).toContain("I::Greeting world");
  expect(image.run(["fim-help"]).stdout).toContain("fim-{bind,boot,casefold,desktop,env,exec,hello,instance,layer,");
  expect(image.run(["fim-help", "hello"]).stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-hello : Greets whoever is named\nUsage: fim-hello <name>\n");
});

test("its errors follow the runtime's conventions", () => {
  const result = image.run(["fim-hello"]);
  expect(result.code).toBe(125);
  expect(lines(result.stderr)).toEqual(["E::Incorrect number of arguments for 'fim-hello' (<name>)", "C::Could not parse arguments", "C::The program exited with an error"]);
});

test("the stock image does not have it", () => {
  const stock = freshImage();
  try {
    expect(lines(stock.run(["fim-hello", "x"]).stderr)[0]).toBe("C::Unknown command: fim-hello: did you mean 'fim-help'?");
  } finally {
    stock.cleanup();
  }
});
