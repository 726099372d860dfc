// Plugins kept outside the repository add a command, a permission and an overlay type
// without touching the core or another plugin: each is compiled in with
// `npm run build -- <bundle> --plugin <file>`.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, freshImage, lines, ROOT, type TestImage } from "../helpers/image.ts";

let outside: string;
let image: TestImage;

beforeAll(() => {
  outside = mkdtempSync(join(tmpdir(), "fim-plugin-"));
  // The plugin lives outside the repository; its type import points back at the runtime's API.
  const plugins = ["hello-plugin/hello.ts", "camera-plugin/camera.ts", "ephemeral-overlay-plugin/ephemeral.ts"].map((file) => {
    const source = readFileSync(join(ROOT, "test/fixtures", file), "utf8").replaceAll("../../../", `${ROOT}/`);
    const path = join(outside, file.split("/")[1]!);
    writeFileSync(path, source);
    return path;
  });
  buildImage("blueprint", join(outside, "hello.flatimage"), plugins.flatMap((path) => ["--plugin", path]));
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
  expect(image.run(["fim-help"]).stdout).toContain("fim-{bind,boot,cache,casefold,desktop,env,exec,hello,instance,layer,");
  expect(image.run(["fim-help", "hello"]).stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-hello : Greets whoever is named\nUsage: fim-hello <name>\n");
});

test("a command from outside that declares itself brief gets the engine tuned for it, as the runtime's own", () => {
  const put = "The engine is tuned for this brief command";
  expect(image.run(["fim-hello", "world"], { env: { FIM_DEBUG: "1" } }).stdout).toContain(put);
  expect(image.run(["fim-perms", "list"], { env: { FIM_DEBUG: "1" } }).stdout).toContain(put);
  expect(image.run(["fim-layer", "list"], { env: { FIM_DEBUG: "1" } }).stdout).not.toContain(put);
});

test("its errors follow the runtime's conventions", () => {
  const result = image.run(["fim-hello"]);
  expect(result.code).toBe(125);
  expect(lines(result.stderr)).toEqual(["E::Incorrect number of arguments for 'fim-hello' (<name>)", "C::Could not parse arguments", "C::The program exited with an error"]);
});

test("a permission from outside: parsed, listed in help, stored at its bit, granting what it names", () => {
  expect(image.run(["fim-help", "perms"]).stdout).toContain("Permissions: all,audio,camera,dbus_system,");
  expect(image.run(["fim-perms", "add", "camera"]).code).toBe(0);
  expect(image.run(["fim-perms", "list"]).stdout).toBe("camera\n");
  const device = join(image.dir, "video-fake");
  writeFileSync(device, "frames\n");
  expect(image.run(["fim-exec", "cat", device], { env: { CAMERA_DEVICE: device } }).stdout).toBe("frames\n");
  image.run(["fim-perms", "del", "camera"]);
  expect(image.run(["fim-exec", "cat", device], { env: { CAMERA_DEVICE: device } }).code).not.toBe(0);
  expect(lines(image.run(["fim-perms", "add", "camra"]).stderr)[0]).toBe("C::Invalid permission 'camra': did you mean 'camera'?");
});

test("an overlay type from outside: set, shown, and the root it makes", () => {
  expect(image.run(["fim-overlay", "set", "ephemeral"]).code).toBe(0);
  expect(image.run(["fim-overlay", "show"]).stdout).toBe("EPHEMERAL\n");
  expect(image.run(["fim-exec", "sh", "-c", "test -f /etc/nsswitch.conf && echo layers; echo kept > /etc/written; cat /etc/written"]).stdout).toBe("layers\nkept\n");
  // In memory only: gone with the run, never in the data directory.
  expect(image.run(["fim-exec", "cat", "/etc/written"]).code).not.toBe(0);
  expect(existsSync(join(image.dir, ".app.flatimage.data/root/etc/written"))).toBe(false);
  expect(image.run(["fim-help", "overlay"]).stdout).toContain("Keeps the guest's writes in memory only");
  image.run(["fim-overlay", "set", "bwrap"]);
});

test("the stock image does not have them", () => {
  const stock = freshImage();
  try {
    expect(lines(stock.run(["fim-hello", "x"]).stderr)[0]).toBe("C::Unknown command: fim-hello: did you mean 'fim-help'?");
    expect(stock.run(["fim-perms", "add", "camera"]).code).toBe(125);
    expect(stock.run(["fim-overlay", "set", "ephemeral"]).code).toBe(125);
  } finally {
    stock.cleanup();
  }
});
