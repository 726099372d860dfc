// fim-recipe against a recipe tree served by a local HTTP server (127.0.0.1, started here):
// fetch, info, dependency walks (diamonds, cycles), failures that must leave the cache as it
// was (404, timeout, malformed JSON, missing fields), progress on a terminal, and install into
// a debian image with packages from Debian's archive. The server lives in this process, so the
// image is always run asynchronously (a synchronous spawn would block the server).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "bun";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildImage, expectParseError, freshImage, lines, type RunResult, type TestImage } from "../helpers/image.ts";

/** Recipe files by URL path (`/repo/<dist>/latest/<name>.json`); anything else is a 404. */
const files = new Map<string, string>();
/** Requests seen, by URL path. */
const requests: string[] = [];
/** Responses that never finish, released at the end so the server can stop. */
const hanging: (() => void)[] = [];
const HUGE = `{"description":"${"x".repeat(2 * 1024 * 1024)}","packages":[]}`;
let server: ReturnType<typeof Bun.serve>;
let remote: string;

const serve = (dist: string, name: string, body: string) => files.set(`/repo/${dist}/latest/${name}.json`, body);
const recipe = (description: string, packages: string[], dependencies?: string[], extra: object = {}) =>
  // Odd spacing on purpose: the cache must hold the served bytes, not a re-serialisation.
  JSON.stringify({ description, packages, ...(dependencies ? { dependencies } : {}), ...extra }, null, 3);

beforeAll(() => {
  server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    idleTimeout: 0,
    fetch(request) {
      const path = new URL(request.url).pathname;
      requests.push(path);
      if (path.endsWith("/silent.json")) return new Promise<Response>((resolve) => hanging.push(() => resolve(new Response("{}"))));
      if (path.endsWith("/stalls.json")) {
        // Sends the start of a recipe, then nothing.
        const stream = new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode('{"description": "half'));
            hanging.push(() => controller.close());
          },
        });
        return new Response(stream, { headers: { "content-type": "application/json" } });
      }
      if (path.endsWith("/huge.json")) return new Response(HUGE);
      const body = files.get(path);
      return body === undefined ? new Response("Not Found", { status: 404 }) : new Response(body);
    },
  });
  remote = `http://127.0.0.1:${server.port}/repo/`;
});

afterAll(() => {
  for (const release of hanging) {
    try {
      release();
    } catch {
      // the client went away and the stream is already closed
    }
  }
  server?.stop(true);
});

async function run(image: TestImage, args: string[], env: Record<string, string> = {}): Promise<RunResult> {
  const proc = Bun.spawn([image.path, ...args], { cwd: image.dir, env: { ...process.env, ...env }, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

function succeeded(result: RunResult, what: string): RunResult {
  if (result.code !== 0) throw new Error(`${what} failed (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  return result;
}

const failure = (...messages: string[]) => [...messages.map((m) => `E::${m}`), "C::The program exited with an error"];

/** The cache's files and their bytes. */
function cacheOf(image: TestImage, dist: string): Record<string, string> {
  const dir = join(image.dir, ".app.flatimage.data/recipes", dist, "latest");
  if (!existsSync(dir)) return {};
  return Object.fromEntries(readdirSync(dir).sort().map((name) => [name, readFileSync(join(dir, name), "utf8")]));
}

describe("fim-recipe (blueprint image)", () => {
  let image: TestImage;
  let cache: string;
  const url = (name: string) => `${remote}blueprint/latest/${name}.json`;
  const at = (name: string) => `${cache}/${name}.json`;

  beforeAll(async () => {
    image = freshImage();
    cache = join(image.dir, ".app.flatimage.data/recipes/blueprint/latest");
    // a → b, c; b → d; c → d: d is reached twice (a diamond), which is not a cycle.
    serve("blueprint", "a", recipe("Recipe A", ["pa1", "pa2"], ["b", "c"]));
    serve("blueprint", "b", recipe("Recipe B", ["pb"], ["d"]));
    serve("blueprint", "c", recipe("Recipe C", [], ["d"]));
    serve("blueprint", "d", recipe("Recipe D", ["pd"]));
    // x → y → z → x
    serve("blueprint", "x", recipe("X", [], ["y"]));
    serve("blueprint", "y", recipe("Y", [], ["z"]));
    serve("blueprint", "z", recipe("Z", [], ["x"]));
    serve("blueprint", "self", recipe("Self", [], ["self"]));
    serve("blueprint", "needs-missing", recipe("Needs a recipe the remote lacks", ["p"], ["d", "missing"]));
    serve("blueprint", "malformed", '{"description": "cut short", "packages": [');
    serve("blueprint", "no-packages", '{"description": "no packages"}');
    serve("blueprint", "bad-deps", '{"description": "d", "packages": [], "dependencies": "d"}');
    serve("blueprint", "empty", "");
    serve("blueprint", "escapes", recipe("Escapes", [], ["../../../../evil"]));
    serve("blueprint", "slow-dep", recipe("Depends on a silent one", [], ["silent"]));
  });

  afterAll(() => image?.cleanup());

  test("parse errors", () => {
    expectParseError(image, ["fim-recipe"], "Missing op for 'fim-recipe' (<fetch|info|install>)");
    expectParseError(image, ["fim-recipe", "foo", "a"], "Invalid recipe operation 'foo' (one of: fetch, info, install)");
    expectParseError(image, ["fim-recipe", "none", "a"], "Invalid recipe operation");
    expectParseError(image, ["fim-recipe", "fetch"], "Missing recipe for operation", "Invalid recipes");
    expectParseError(image, ["fim-recipe", "INFO", ""], "Recipe argument is empty", "Invalid recipes");
    expectParseError(image, ["fim-recipe", "install", "a", "b"], "Trailing arguments for fim-recipe: ['b',]");
  });

  test("fetch without a remote fails and writes nothing", async () => {
    const result = await run(image, ["fim-recipe", "fetch", "a"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(failure("No remote URL configured", "Failed to get remote URL", "Failed to fetch recipe"));
    expect(cacheOf(image, "blueprint")).toEqual({});
  });

  test("fetch downloads a recipe and its dependencies, a diamond once each", async () => {
    succeeded(await run(image, ["fim-remote", "set", remote]), "fim-remote set"); // trailing '/' is dropped in URLs
    requests.length = 0;
    const result = succeeded(await run(image, ["fim-recipe", "fetch", "a"]), "fetch a");
    expect(result.stderr).toBe(""); // not a terminal: no progress
    const order = ["a", "b", "d", "c"];
    expect(lines(result.stdout)).toEqual([
      ...order.flatMap((name) => [`I::Downloading recipe from '${url(name)}'`, `I::Saving to '${at(name)}'`]),
      ...order.map((name) => `I::Successfully downloaded recipe '${name}' to '${at(name)}'`),
    ]);
    expect(requests).toEqual(order.map((name) => `/repo/blueprint/latest/${name}.json`));
    // The served bytes, exactly.
    expect(cacheOf(image, "blueprint")).toEqual(Object.fromEntries(["a", "b", "c", "d"].map((name) => [`${name}.json`, files.get(`/repo/blueprint/latest/${name}.json`)!])));
  });

  test("fetch always downloads again; several names share one walk", async () => {
    requests.length = 0;
    succeeded(await run(image, ["fim-recipe", "fetch", "d,b"]), "fetch d,b");
    expect(requests).toEqual(["/repo/blueprint/latest/d.json", "/repo/blueprint/latest/b.json"]);
  });

  test("info shows cached recipes; a missing one fails after the earlier output", async () => {
    const result = await run(image, ["fim-recipe", "info", "a,d,nothere"]);
    expect(result.code).toBe(125);
    expect(result.stdout).toBe(
      [
        "Recipe: a",
        `Location: ${at("a")}`,
        "Description: Recipe A",
        "Package count: 2",
        "Packages:",
        "  - pa1",
        "  - pa2",
        "Dependencies: 2",
        "  - b",
        "  - c",
        "Recipe: d",
        `Location: ${at("d")}`,
        "Description: Recipe D",
        "Package count: 1",
        "Packages:",
        "  - pd",
        "Dependencies: 0",
        "",
      ].join("\n"),
    );
    expect(lines(result.stderr)).toEqual(failure("Recipe 'nothere' not found locally. Use 'fim-recipe fetch nothere' first.", "Failed to get recipe info"));
    // Names are not trimmed.
    const spaced = await run(image, ["fim-recipe", "info", "a, d"]);
    expect(lines(spaced.stderr)).toEqual(failure("Recipe ' d' not found locally. Use 'fim-recipe fetch  d' first.", "Failed to get recipe info"));
  });

  test("info reports a damaged cache file", async () => {
    writeFileSync(at("damaged"), '{"description": 1, "packages": []}');
    const result = await run(image, ["fim-recipe", "info", "damaged"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(
      failure("Invalid 'description' field: expected string, received 1", `Invalid recipe file '${at("damaged")}'`, "Failed to get recipe info"),
    );
    rmSync(at("damaged"));
  });

  test("a cycle is refused with its path, and nothing is saved", async () => {
    const before = cacheOf(image, "blueprint");
    const cycle = await run(image, ["fim-recipe", "fetch", "x"]);
    expect(cycle.code).toBe(125);
    expect(lines(cycle.stderr)).toEqual(failure("Cyclic dependency for recipe 'x': x -> y -> z -> x", "Failed to fetch recipe"));
    expect(cycle.stdout).not.toContain("Successfully downloaded");
    const self = await run(image, ["fim-recipe", "fetch", "self"]);
    expect(lines(self.stderr)).toEqual(failure("Cyclic dependency for recipe 'self': self -> self", "Failed to fetch recipe"));
    expect(cacheOf(image, "blueprint")).toEqual(before);
  });

  test("a 404 fails the fetch and leaves the cache as it was", async () => {
    const before = cacheOf(image, "blueprint");
    const result = await run(image, ["fim-recipe", "fetch", "needs-missing"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(failure("HTTP 404 Not Found", `Could not download recipe 'missing' from '${url("missing")}'`, "Failed to fetch recipe"));
    expect(result.stdout).not.toContain("Successfully downloaded");
    // d was downloaded again on the way, but not saved either: the command failed.
    expect(cacheOf(image, "blueprint")).toEqual(before);
  });

  test("malformed JSON, missing or mistyped fields, an empty file: refused, the cached copy kept", async () => {
    const before = cacheOf(image, "blueprint");
    for (const [name, reason] of [
      ["malformed", "Could not parse json file: JSON Parse error: Unexpected EOF"],
      ["no-packages", "Missing 'packages' field"],
      ["bad-deps", 'Invalid \'dependencies\' field: expected Array, received "d"'],
      ["empty", "Empty json file"],
    ]) {
      const result = await run(image, ["fim-recipe", "fetch", name!]);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual(failure(reason!, `Invalid recipe '${name}' from '${url(name!)}'`, "Failed to fetch recipe"));
    }
    // A recipe already cached is not replaced by a broken download of it.
    serve("blueprint", "d", "{ broken");
    const result = await run(image, ["fim-recipe", "fetch", "d"]);
    expect(result.code).toBe(125);
    expect(cacheOf(image, "blueprint")).toEqual(before);
    serve("blueprint", "d", recipe("Recipe D", ["pd"]));
  });

  test("a silent server times out (FIM_RECIPE_TIMEOUT), before or during the body", async () => {
    const before = cacheOf(image, "blueprint");
    const silent = await run(image, ["fim-recipe", "fetch", "slow-dep"], { FIM_RECIPE_TIMEOUT: "0.5" });
    expect(silent.code).toBe(125);
    expect(lines(silent.stderr)).toEqual(
      failure("no data for 0.5 s (timeout set by FIM_RECIPE_TIMEOUT)", `Could not download recipe 'silent' from '${url("silent")}'`, "Failed to fetch recipe"),
    );
    const stalls = await run(image, ["fim-recipe", "fetch", "stalls"], { FIM_RECIPE_TIMEOUT: "0.5" });
    expect(lines(stalls.stderr)).toEqual(
      failure("no data for 0.5 s (timeout set by FIM_RECIPE_TIMEOUT)", `Could not download recipe 'stalls' from '${url("stalls")}'`, "Failed to fetch recipe"),
    );
    expect(cacheOf(image, "blueprint")).toEqual(before);
    const bad = await run(image, ["fim-recipe", "fetch", "d"], { FIM_RECIPE_TIMEOUT: "soon" });
    expect(lines(bad.stderr)[0]).toBe("E::Invalid FIM_RECIPE_TIMEOUT 'soon': expected a number of seconds between 0.001 and 86400");
  });

  test("oversized files and names that leave the cache are refused", async () => {
    const huge = await run(image, ["fim-recipe", "fetch", "huge"]);
    expect(lines(huge.stderr)[0]).toBe(`E::the file is larger than 1024.0 KiB (${HUGE.length} bytes)`);
    const escapes = await run(image, ["fim-recipe", "fetch", "escapes"]);
    expect(lines(escapes.stderr)).toEqual(failure("Invalid recipe name '../../../../evil'", "Failed to fetch recipe"));
    expect(requests.filter((path) => path.includes("evil"))).toEqual([]);
    const info = await run(image, ["fim-recipe", "info", "../latest/a"]);
    expect(lines(info.stderr)).toEqual(failure("Invalid recipe name '../latest/a'", "Failed to get recipe info"));
  });

  test("progress is shown on a terminal", async () => {
    // script(1) gives the image a pseudo-terminal.
    const command = [image.path, "fim-recipe", "fetch", "d"].map((word) => `'${word}'`).join(" ");
    const proc = Bun.spawn(["script", "-qec", command, "/dev/null"], { cwd: image.dir, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
    const [output, code] = await Promise.all([new Response(proc.stdout).text(), proc.exited]);
    expect(code).toBe(0);
    const size = Buffer.byteLength(files.get("/repo/blueprint/latest/d.json")!);
    expect(output).toContain(`\rd.json: ${size} B of ${size} B (100%)`);
  });

  test("install: blueprint has no package manager; nothing is downloaded", async () => {
    requests.length = 0;
    const result = await run(image, ["fim-recipe", "install", "a"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(failure("Blueprint does not support recipes"));
    expect(requests).toEqual([]);
  });
});

describe("fim-recipe install (debian image, packages from Debian's archive)", () => {
  /** apt-get update + install of two small packages: seconds, unless the archive is slow. */
  const NETWORK_TIMEOUT = 300_000;
  const ICON = '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16"/></svg>\n';
  let image: TestImage;
  let xdg: string;

  beforeAll(() => {
    // Built here (seconds, from the cached root filesystem layer) so that it has this tree's plugins.
    const build = mkdtempSync(join(tmpdir(), "fim-test-recipe-"));
    try {
      buildImage("debian", join(build, "debian.flatimage"));
      image = freshImage(join(build, "debian.flatimage"));
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
    xdg = join(image.dir, "xdg");
    files.set("/icons/greet.svg", ICON);
    const desktop = { name: "Greet", icon: `http://127.0.0.1:${server.port}/icons/greet.svg`, categories: ["Utility"], integrations: ["ENTRY"] };
    serve("debian", "greet", recipe("Greets the world", ["hello"], ["banner"], { desktop }));
    serve("debian", "banner", recipe("Big letters", ["figlet"]));
    serve("debian", "broken", recipe("A package Debian does not have", ["fim-no-such-package"]));
  }, 600_000);

  afterAll(() => image?.cleanup());

  test(
    "installs a recipe and its dependency with apt, applies its desktop section; the programs run",
    async () => {
      succeeded(await run(image, ["fim-perms", "add", "network"]), "fim-perms add network");
      succeeded(await run(image, ["fim-remote", "set", remote]), "fim-remote set");
      const result = succeeded(await run(image, ["fim-recipe", "install", "greet"], { XDG_DATA_HOME: xdg }), "fim-recipe install greet");
      const info = lines(result.stdout).filter((line) => line.startsWith("I::") && !/^I::(ENV|XDG_RUNTIME_DIR|Overlay)/.test(line.slice(3)));
      const cache = join(image.dir, ".app.flatimage.data/recipes/debian/latest");
      expect(info).toEqual(
        expect.arrayContaining([
          `I::Successfully downloaded recipe 'greet' to '${cache}/greet.json'`,
          `I::Successfully downloaded recipe 'banner' to '${cache}/banner.json'`,
          "I::Found desktop integration in recipe 'greet'",
          "I::Setting up desktop integration from recipe",
          "I::Desktop integration setup successful",
          "I::Installing packages: figlet hello", // dependencies first
        ]),
      );
      expect(result.stdout).toContain('"name": "Greet"'); // fim-desktop setup prints the stored JSON
      expect(result.stdout).toContain("Setting up hello");
      expect(result.stdout).toContain("Setting up figlet");
      expect(result.stderr).not.toContain("E::");

      expect(await run(image, ["fim-exec", "hello"])).toEqual({ code: 0, stdout: "Hello, world!\n", stderr: "" });
      const figlet = await run(image, ["fim-exec", "figlet", "hi"]);
      expect(figlet.code).toBe(0);
      expect(figlet.stdout).toContain("| |__ (_)");

      // The desktop section is stored in the image, and this very run already integrated it.
      const dumped = join(image.dir, "icon.svg");
      succeeded(await run(image, ["fim-desktop", "dump", "icon", dumped]), "fim-desktop dump icon");
      expect(readFileSync(dumped, "utf8")).toBe(ICON);
      expect((await run(image, ["fim-desktop", "dump", "entry"])).stdout).toContain("Name=Greet\n");
      expect(existsSync(join(xdg, "applications/flatimage-Greet.desktop"))).toBe(true);
    },
    NETWORK_TIMEOUT,
  );

  test(
    "a second install reuses the cache; the package manager's exit code is the command's",
    async () => {
      requests.length = 0;
      const result = await run(image, ["fim-recipe", "install", "greet,broken"], { XDG_DATA_HOME: xdg });
      expect(result.code).toBe(100); // apt-get's
      const cache = join(image.dir, ".app.flatimage.data/recipes/debian/latest");
      expect(lines(result.stdout)).toEqual(
        expect.arrayContaining([
          `I::Using existing recipe from '${cache}/greet.json'`,
          `I::Using existing recipe from '${cache}/banner.json'`,
          `I::Successfully downloaded recipe 'broken' to '${cache}/broken.json'`,
          "I::Installing packages: figlet hello fim-no-such-package",
        ]),
      );
      expect(requests).toEqual(["/repo/debian/latest/broken.json", "/icons/greet.svg"]);
      expect(result.stderr).toContain("Unable to locate package fim-no-such-package");
    },
    NETWORK_TIMEOUT,
  );
});
