// fim-desktop and the automatic desktop integration (reference §13), fim-notify's effect (§13.6).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { createHash } from "node:crypto";
import {
  chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, openSync, statSync, symlinkSync, writeFileSync, writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";
import { privateRuntimeDir } from "../helpers/boot.ts";

setDefaultTimeout(120_000);

const SIZES = [16, 22, 24, 32, 48, 64, 96, 128, 256];
const ROOT_USER = process.getuid?.() === 0;

function hostTool(name: string): string {
  const path = Bun.which(name, { PATH: "/usr/bin:/bin:/usr/sbin:/sbin" });
  if (!path) throw new Error(`'${name}' is missing on this machine: install it with apt-get install -y ${name === "desktop-file-validate" ? "desktop-file-utils" : "shared-mime-info"} (scripts/prepare.sh does)`);
  return path;
}
const UPDATE_MIME = hostTool("update-mime-database");
const VALIDATE = hostTool("desktop-file-validate");

async function jimp() {
  const { createJimp } = await import("@jimp/core");
  const png = (await import("@jimp/js-png")).default;
  const jpeg = (await import("@jimp/js-jpeg")).default;
  return createJimp({ formats: [png, jpeg] });
}

/** A solid red image, encoded by jimp (the runtime's resizer must decode it). */
async function makeImage(width: number, height: number, mime: "image/png" | "image/jpeg"): Promise<Buffer> {
  const Jimp = await jimp();
  return Buffer.from(await new Jimp({ width, height, color: 0xff0000ff }).getBuffer(mime));
}

/** Decodes a PNG fully: its size, the colour of its centre pixel, and the rows and columns holding any colour. */
async function decode(path: string): Promise<{ width: number; height: number; centre: number; rows: [number, number]; columns: [number, number] }> {
  const bytes = readFileSync(path);
  expect(bytes.subarray(1, 4).toString("latin1")).toBe("PNG");
  const image = await (await jimp()).read(bytes);
  const rows: [number, number] = [image.height, -1];
  const columns: [number, number] = [image.width, -1];
  for (let y = 0; y < image.height; y++) {
    for (let x = 0; x < image.width; x++) {
      if ((image.getPixelColor(x, y) & 0xff) === 0) continue; // transparent
      rows[0] = Math.min(rows[0], y);
      rows[1] = Math.max(rows[1], y);
      columns[0] = Math.min(columns[0], x);
      columns[1] = Math.max(columns[1], x);
    }
  }
  return { width: image.width, height: image.height, centre: image.getPixelColor(Math.floor(image.width / 2), Math.floor(image.height / 2)), rows, columns };
}

/** Where a w×h picture scaled into an s×s square lies: centred, its longer side the whole square. */
function placed(size: number, w: number, h: number): { rows: [number, number]; columns: [number, number] } {
  const sw = w >= h ? size : Math.max(1, Math.round((size * w) / h));
  const sh = w >= h ? Math.max(1, Math.round((size * h) / w)) : size;
  const x = Math.floor((size - sw) / 2);
  const y = Math.floor((size - sh) / 2);
  return { rows: [y, y + sh - 1], columns: [x, x + sw - 1] };
}

const SVG = `<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10" fill="red"/></svg>\n`;
const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");

/** Every file under a directory, relative to it, sorted. */
function files(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at, { withFileTypes: true })) {
      const path = join(at, entry.name);
      if (entry.isDirectory()) walk(path);
      else out.push(relative(dir, path));
    }
  };
  walk(dir);
  return out.sort();
}

/** The files integration writes for one name (PNG icon), relative to XDG. */
function nameFiles(name: string, icon: "png" | "svg"): string[] {
  const out = [`applications/flatimage-${name}.desktop`, `mime/packages/flatimage-${name}.xml`];
  if (icon === "png") {
    for (const s of SIZES) out.push(`icons/hicolor/${s}x${s}/apps/flatimage_${name}.png`, `icons/hicolor/${s}x${s}/mimetypes/application-flatimage_${name}.png`);
  } else {
    out.push(`icons/hicolor/scalable/apps/flatimage_${name}.svg`, `icons/hicolor/scalable/mimetypes/application-flatimage_${name}.svg`);
  }
  return out.sort();
}

const entryOf = (name: string, image: string, categories: string) =>
  `[Desktop Entry]\nName=${name}\nType=Application\nComment=FlatImage distribution of "${name}"\nExec="${image}" %F\nIcon=flatimage_${name}\nMimeType=application/flatimage_${name};\nCategories=${categories}`;

const mimeOf = (name: string, base: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/flatimage_${name}">
    <comment>FlatImage Application</comment>
    <glob weight="100" pattern="${base}"/>
    <sub-class-of type="application/x-executable"/>
    <generic-icon name="application-flatimage"/>
  </mime-type>
</mime-info>`;

const GENERIC = `<?xml version="1.0" encoding="UTF-8"?>
<mime-info xmlns="http://www.freedesktop.org/standards/shared-mime-info">
  <mime-type type="application/flatimage">
    <comment>FlatImage Application</comment>
    <magic>
      <match value="ELF" type="string" offset="1">
        <match value="0x46" type="byte" offset="8">
          <match value="0x49" type="byte" offset="9">
            <match value="0x01" type="byte" offset="10"/>
          </match>
        </match>
      </match>
    </magic>
    <glob weight="50" pattern="*.flatimage"/>
    <sub-class-of type="application/x-executable"/>
    <generic-icon name="application-flatimage"/>
  </mime-type>
</mime-info>
`;

let landscapePng: Buffer;
let portraitJpeg: Buffer;
let server: { port: number; stop(): void };

/**
 * An HTTP server in a process of its own: the tests block in spawnSync while the image
 * downloads, so a server in this process could not answer.
 */
async function serve(files: Record<string, Buffer | string>): Promise<{ port: number; stop(): void }> {
  const dir = mkdtempSync(join(tmpdir(), "fim-serve-"));
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  writeFileSync(
    join(dir, "server.ts"),
    `const dir = ${JSON.stringify(dir)};
const server = Bun.serve({ port: 0, hostname: "127.0.0.1", async fetch(request) {
  const file = Bun.file(dir + "/files" + new URL(request.url).pathname);
  return (await file.exists()) ? new Response(file) : new Response("not here", { status: 404 });
} });
console.log(server.port);`,
  );
  mkdirSync(join(dir, "files/icons"), { recursive: true });
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, "files/icons", name), data);
  const child = Bun.spawn([process.execPath, join(dir, "server.ts")], { stdout: "pipe", stderr: "inherit" });
  const reader = child.stdout.getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the test's HTTP server did not start");
    text += new TextDecoder().decode(value);
  }
  return {
    port: Number(text.trim()),
    stop() {
      child.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

beforeAll(async () => {
  landscapePng = await makeImage(300, 200, "image/png");
  portraitJpeg = await makeImage(100, 150, "image/jpeg");
  server = await serve({ "app.png": landscapePng, "app.svg": SVG });
});
afterAll(() => server.stop());

/** An image with its own XDG_DATA_HOME and a scratch directory for input files. */
interface Fixture {
  image: TestImage;
  xdg: string;
  env: Record<string, string | undefined>;
  /** Writes a setup file (and any icon files) into the image's directory; returns its path. */
  setupFile(json: unknown, name?: string): string;
  run(args: string[], env?: Record<string, string | undefined>): ReturnType<TestImage["run"]>;
}

const fixtures: Fixture[] = [];
afterAll(() => fixtures.forEach((fixture) => fixture.image.cleanup()));

function fixture(name = "app.flatimage"): Fixture {
  const image = freshImage(undefined, name);
  const xdg = join(image.dir, "xdg");
  mkdirSync(xdg);
  // Downloads from the test's server must not go through a proxy.
  const env = { XDG_DATA_HOME: xdg, http_proxy: undefined, https_proxy: undefined, HTTP_PROXY: undefined, HTTPS_PROXY: undefined, NO_PROXY: "127.0.0.1" };
  writeFileSync(join(image.dir, "icon.png"), landscapePng);
  writeFileSync(join(image.dir, "icon.jpg"), portraitJpeg);
  writeFileSync(join(image.dir, "icon.svg"), SVG);
  const made: Fixture = {
    image,
    xdg,
    env,
    setupFile(json, file = "desktop.json") {
      const path = join(image.dir, file);
      writeFileSync(path, typeof json === "string" ? json : JSON.stringify(json));
      return path;
    },
    run: (args, extra = {}) => image.run(args, { env: { ...env, ...extra } }),
  };
  fixtures.push(made);
  return made;
}

const APP = { name: "MyApp", icon: "icon.png", categories: ["System", "Network", "System"], integrations: ["entry", "MimeType", "ICON"] };

function setUp(f: Fixture, json: unknown = APP): void {
  const result = f.run(["fim-desktop", "setup", f.setupFile(json)]);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
}

function runGuest(f: Fixture, env: Record<string, string | undefined> = {}) {
  const result = f.run(["fim-exec", "echo", "guest-ran"], env);
  expect(result.stdout.split("\n")).toContain("guest-ran");
  expect(result.code).toBe(0);
  return result;
}

describe("fim-desktop arguments", () => {
  let f: Fixture;
  beforeAll(() => (f = fixture()));

  test("parse errors (reference §4.15)", () => {
    expectParseError(f.image, ["fim-desktop"], "Missing op for 'fim-desktop' (enable,setup,clean,dump)");
    expectParseError(f.image, ["fim-desktop", "install"], "Invalid desktop operation 'install' (one of: enable, setup, clean, dump)");
    expectParseError(f.image, ["fim-desktop", "none"], "Invalid desktop operation");
    expectParseError(f.image, ["fim-desktop", "setup"], "Missing argument for 'setup' (/path/to/file.json)");
    expectParseError(f.image, ["fim-desktop", "setup", "a.json", "b"], "Trailing arguments for fim-desktop: ['b',]");
    expectParseError(f.image, ["fim-desktop", "enable"], "Missing arguments for 'enable' (entry,mimetype,icon,none)");
    expectParseError(f.image, ["fim-desktop", "enable", "entry,menu"], "Invalid integration item 'menu' (one of: entry, mimetype, icon)");
    expectParseError(f.image, ["fim-desktop", "enable", "entry,"], "Invalid integration item '' (one of: entry, mimetype, icon)");
    expectParseError(f.image, ["fim-desktop", "enable", "none,icon"], "'none' option should not be used with others");
    expectParseError(f.image, ["fim-desktop", "enable", "icon", "x"], "Trailing arguments for fim-desktop: ['x',]");
    expectParseError(f.image, ["fim-desktop", "clean", "x"], "Trailing arguments for fim-desktop: ['x',]");
    expectParseError(f.image, ["fim-desktop", "dump"], "Missing arguments for 'dump' (entry,mimetype,icon)");
    expectParseError(f.image, ["fim-desktop", "dump", "logo"], "Invalid dump operation 'logo' (one of: entry, mimetype, icon)");
    expectParseError(f.image, ["fim-desktop", "dump", "none"], "Invalid desktop dump operation");
    expectParseError(f.image, ["fim-desktop", "dump", "icon"], "Missing argument for 'icon' /path/to/dump/file");
    expectParseError(f.image, ["fim-desktop", "dump", "entry", "x"], "Trailing arguments for fim-desktop: ['x',]");
  });

  test("commands that need a stored configuration say so", () => {
    const expectFailure = (args: string[], ...tail: string[]) => {
      const result = f.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual(["W::Empty json data", ...tail, "C::The program exited with an error"]);
    };
    expectFailure(["fim-desktop", "enable", "entry"], "E::Failed to enable desktop integration");
    expectFailure(["fim-desktop", "clean"], "E::Failed to de-serialize desktop integration");
    expectFailure(["fim-desktop", "dump", "entry"], "E::Failed to dump desktop entry");
    expectFailure(["fim-desktop", "dump", "mimetype"], "E::Failed to dump MIME type");
    const icon = f.run(["fim-desktop", "dump", "icon", join(f.image.dir, "out")]);
    expect(icon.code).toBe(125);
    expect(lines(icon.stderr)).toEqual(["E::Empty icon data", "E::Failed to dump desktop icon", "C::The program exited with an error"]);
    expect(files(f.xdg)).toEqual([]);
  });
});

describe("fim-desktop setup", () => {
  test("prints and stores the JSON: categories sorted and unique, integrations in canonical order, no icon", () => {
    const f = fixture();
    const result = f.run(["fim-desktop", "setup", f.setupFile(APP)]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe(
      '{\n  "categories": [\n    "Network",\n    "System"\n  ],\n  "integrations": [\n    "ENTRY",\n    "MIMETYPE",\n    "ICON"\n  ],\n  "name": "MyApp"\n}\n',
    );
    // Setup writes only the image: integration happens on a run.
    expect(files(f.xdg)).toEqual([]);
    expect(f.run(["fim-desktop", "dump", "entry"]).stdout).toBe(`${entryOf("MyApp", f.image.path, "Network;System;")}\n`);
    expect(f.run(["fim-desktop", "dump", "mimetype"]).stdout).toBe(`${mimeOf("MyApp", "app.flatimage")}\n`);
  });

  test("integrations default to none; a non-array counts as none; names may contain spaces", () => {
    const f = fixture();
    const none = f.run(["fim-desktop", "setup", f.setupFile({ name: "My App", icon: "icon.svg", categories: ["Utility"] })]);
    expect(none.stdout).toBe('{\n  "categories": [\n    "Utility"\n  ],\n  "integrations": [],\n  "name": "My App"\n}\n');
    const odd = f.run(["fim-desktop", "setup", f.setupFile({ name: "My App", icon: "icon.svg", categories: ["Utility"], integrations: "entry" })]);
    expect(odd.code).toBe(0);
    expect(odd.stdout).toContain('"integrations": []');
  });

  test("dump icon writes the stored bytes, appending the stored extension when the path lacks it", () => {
    const f = fixture();
    setUp(f);
    const dump = (path: string) => f.run(["fim-desktop", "dump", "icon", join(f.image.dir, path)]);
    for (const [given, written] of [["out", "out.png"], ["given.png", "given.png"], ["other.jpg", "other.jpg.png"]]) {
      const result = dump(given!);
      expect(result.code).toBe(0);
      // Where it went (upstream printed nothing, and appended the extension silently).
      expect(lines(result.stdout)).toEqual([`I::Wrote the icon (png, ${landscapePng.length} bytes) to '${join(f.image.dir, written!)}'`]);
      expect(sha256(readFileSync(join(f.image.dir, written!)))).toBe(sha256(landscapePng));
    }
    setUp(f, { ...APP, icon: "icon.svg" });
    expect(dump("logo").code).toBe(0);
    expect(readFileSync(join(f.image.dir, "logo.svg"), "utf8")).toBe(SVG);
    // A jpeg icon is stored as "jpg" and can be dumped (upstream refused: a quirk fixed).
    writeFileSync(join(f.image.dir, "photo.jpeg"), portraitJpeg);
    setUp(f, { ...APP, icon: "photo.jpeg" });
    expect(dump("photo").code).toBe(0);
    expect(sha256(readFileSync(join(f.image.dir, "photo.jpg")))).toBe(sha256(portraitJpeg));
  });

  test("an icon from an http URL is downloaded in-process", () => {
    const f = fixture();
    const url = `http://127.0.0.1:${server.port}/icons/app.png`;
    const result = f.run(["fim-desktop", "setup", f.setupFile({ ...APP, icon: url })]);
    expect(result.stderr).toBe("");
    expect(result.code).toBe(0);
    const info = lines(result.stdout).filter((line) => line.startsWith("I::"));
    expect(info[0]).toBe(`I::Icon is an URL: ${url}`);
    expect(info[1]).toMatch(/^I::Successfully downloaded icon to: .*\/icon\.png$/);
    // The staging copy is gone.
    expect(existsSync(info[1]!.slice("I::Successfully downloaded icon to: ".length))).toBe(false);
    expect(f.run(["fim-desktop", "dump", "icon", join(f.image.dir, "got")]).code).toBe(0);
    expect(sha256(readFileSync(join(f.image.dir, "got.png")))).toBe(sha256(landscapePng));
  });

  describe("bad input: a clear message, 125, the stored configuration and XDG_DATA_HOME untouched", () => {
    let f: Fixture;
    beforeAll(() => {
      f = fixture();
      setUp(f); // a previous, good configuration
    });

    function expectSetupError(json: unknown, ...messages: string[]) {
      const before = [f.run(["fim-desktop", "dump", "entry"]).stdout, f.run(["fim-desktop", "dump", "icon", join(f.image.dir, "before")])];
      const file = json === undefined ? join(f.image.dir, "missing.json") : f.setupFile(json);
      const result = f.run(["fim-desktop", "setup", file]);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([...messages.map((m) => m.replace("<file>", file)), "E::Failed to setup desktop integration", "C::The program exited with an error"]);
      expect(f.run(["fim-desktop", "dump", "entry"]).stdout).toBe(before[0] as string);
      expect(f.run(["fim-desktop", "dump", "icon", join(f.image.dir, "after")]).code).toBe(0);
      expect(sha256(readFileSync(join(f.image.dir, "after.png")))).toBe(sha256(landscapePng));
      expect(files(f.xdg)).toEqual([]);
    }

    test("unreadable or malformed files", () => {
      expectSetupError(undefined, "E::Failed to open file '<file>' for desktop integration (No such file or directory)");
      expectSetupError("", "W::Empty json data");
      expectSetupError("{ name: ", `E::Invalid JSON in '<file>': JSON Parse error: Expected '}'`, "E::Failed to deserialize json");
      expectSetupError({ icon: "icon.png", categories: [] }, "E::Invalid desktop integration file '<file>': name: missing", "E::Failed to deserialize json");
      expectSetupError({ name: "A", icon: "icon.png" }, "E::Invalid desktop integration file '<file>': categories: missing", "E::Failed to deserialize json");
      expectSetupError({ name: 5, icon: "icon.png", categories: [] }, "E::Invalid desktop integration file '<file>': name: name must be a string", "E::Failed to deserialize json");
      expectSetupError({ name: "A", icon: "icon.png", categories: [1] }, "E::Invalid desktop integration file '<file>': categories.0: categories must be strings", "E::Failed to deserialize json");
      expectSetupError(
        { name: "A", icon: "icon.png", categories: [], integrations: ["entry", "menu"] },
        "E::Invalid desktop integration file '<file>': integrations: unknown integration 'menu' (expected entry, mimetype, icon or none)",
        "E::Failed to deserialize json",
      );
    });

    test("bad names, categories and icon fields", () => {
      expectSetupError({ ...APP, name: "my/app" }, "E::Application name cannot contain the '/' character");
      expectSetupError({ ...APP, name: "" }, "E::Application name cannot be empty");
      expectSetupError({ ...APP, name: "two\nlines" }, "E::Application name cannot contain control characters");
      expectSetupError({ ...APP, categories: ["A;B"] }, "E::Invalid category 'A;B': it must be non-empty, without ';' or control characters");
      expectSetupError({ name: "A", categories: [] }, "E::Could not retrieve icon path field from json");
      expectSetupError({ ...APP, icon: 42 }, "E::Could not retrieve icon path field from json");
    });

    test("missing, unreadable, unsupported, mislabelled and oversized icons", () => {
      expectSetupError({ ...APP, icon: "nothere.png" }, "E::Could not get size of file 'nothere.png': No such file or directory");
      mkdirSync(join(f.image.dir, "folder.png"));
      expectSetupError({ ...APP, icon: "folder.png" }, "E::Could not read icon file 'folder.png': Is a directory");
      if (!ROOT_USER) {
        writeFileSync(join(f.image.dir, "secret.png"), landscapePng, { mode: 0o000 });
        expectSetupError({ ...APP, icon: "secret.png" }, "E::Could not read icon file 'secret.png': Permission denied");
      }
      writeFileSync(join(f.image.dir, "anim.gif"), "GIF89a");
      expectSetupError({ ...APP, icon: "anim.gif" }, "E::Icon extension '.gif' is not supported");
      expectSetupError({ ...APP, icon: "icon.PNG" }, "E::Icon extension '.PNG' is not supported");
      expectSetupError({ ...APP, icon: "noext" }, "E::Icon extension '' is not supported");
      writeFileSync(join(f.image.dir, "fake.png"), SVG);
      expectSetupError({ ...APP, icon: "fake.png" }, "E::Icon file 'fake.png' is not a valid PNG image");
      const big = Buffer.alloc(1048565);
      landscapePng.copy(big);
      writeFileSync(join(f.image.dir, "big.png"), big);
      expectSetupError({ ...APP, icon: "big.png" }, "E::File is too large, '1048565' bytes");
    });

    test("URL icons: no extension, a failed download", () => {
      const base = `http://127.0.0.1:${server.port}`;
      // (`I::Icon is an URL: …` goes to stdout.)
      expectSetupError({ ...APP, icon: `${base}/icons/app` }, "E::Could not get icon file extension from url", "E::Failed to resolve icon path or URL");
      expectSetupError(
        { ...APP, icon: `${base}/icons/gone.png` },
        `E::Download failed with HTTP status 404 for URL: ${base}/icons/gone.png`,
        "E::Failed to resolve icon path or URL",
      );
    });
  });

  test("the largest icon that fits the slot (1048564 bytes) round-trips", () => {
    const f = fixture();
    const largest = Buffer.alloc(1048564, 7);
    landscapePng.copy(largest);
    writeFileSync(join(f.image.dir, "largest.png"), largest);
    setUp(f, { ...APP, icon: "largest.png" });
    expect(f.run(["fim-desktop", "dump", "icon", join(f.image.dir, "copy.png")]).code).toBe(0);
    expect(sha256(readFileSync(join(f.image.dir, "copy.png")))).toBe(sha256(largest));
  });
});

describe("fim-desktop enable", () => {
  test("replaces the set and prints it upper-case in canonical order", () => {
    const f = fixture();
    setUp(f, { ...APP, integrations: [] });
    const enabled = f.run(["fim-desktop", "enable", "icon,Entry,icon"]);
    expect(enabled.code).toBe(0);
    expect(enabled.stdout).toBe("ENTRY\nICON\n");
    expect(f.run(["fim-desktop", "enable", "none"]).stdout).toBe("NONE\n");
    const nothing = f.run(["fim-desktop", "enable", ""]);
    expect(nothing.code).toBe(0);
    expect(nothing.stdout).toBe("");
    // Nothing enabled: a run writes nothing.
    runGuest(f);
    expect(files(f.xdg)).toEqual([]);
    f.run(["fim-desktop", "enable", "entry"]);
    runGuest(f);
    expect(files(f.xdg)).toEqual(["applications/flatimage-MyApp.desktop"]);
  });
});

describe("automatic integration on a run", () => {
  test("no stored configuration: the run is unaffected; the trace is W level", () => {
    const f = fixture();
    const quiet = runGuest(f);
    expect(quiet.stderr).toBe("");
    const debug = runGuest(f, { FIM_DEBUG: "1" });
    expect(lines(debug.stderr).filter((line) => line.startsWith("W::") && !line.includes("XDG_RUNTIME_DIR"))).toEqual([
      "W::Empty json data",
      "W::Missing or misconfigured desktop integration",
      "W::Could not perform desktop integration",
    ]);
    expect(files(f.xdg)).toEqual([]);
  });

  test("entry, MIME type and PNG icons: exact files, validated by desktop-file-validate and update-mime-database", async () => {
    const f = fixture();
    setUp(f);
    const result = runGuest(f, { FIM_DEBUG: "1" });
    const desktopLines = lines(result.stdout).filter((line) => /^[DI]::/.test(line) && /desktop|mime|Integrating/.test(line));
    expect(desktopLines.slice(0, 4)).toEqual([
      "I::Integrating desktop entry",
      "I::Integrating mime database",
      `I::Updating mime database '${f.xdg}'`,
      "I::Integrating desktop icons",
    ]);
    expect(lines(result.stdout)).toContain("I::Image size is 300x200");

    const entry = join(f.xdg, "applications/flatimage-MyApp.desktop");
    expect(readFileSync(entry, "utf8")).toBe(entryOf("MyApp", f.image.path, "Network;System;"));
    const validated = Bun.spawnSync([VALIDATE, entry]);
    expect(validated.stdout.toString() + validated.stderr.toString()).not.toContain("error");
    expect(validated.exitCode).toBe(0);

    expect(readFileSync(join(f.xdg, "mime/packages/flatimage-MyApp.xml"), "utf8")).toBe(mimeOf("MyApp", "app.flatimage"));
    expect(readFileSync(join(f.xdg, "mime/packages/flatimage.xml"), "utf8")).toBe(GENERIC);
    // The run's update-mime-database built the database; a fresh build from the packages is accepted too.
    expect(readFileSync(join(f.xdg, "mime/globs2"), "utf8")).toMatch(/^100:application\/flatimage_myapp:app\.flatimage$/im);
    expect(readFileSync(join(f.xdg, "mime/globs2"), "utf8")).toContain("50:application/flatimage:*.flatimage");
    const copy = mkdtempSync(join(f.image.dir, "mime-"));
    mkdirSync(join(copy, "packages"));
    for (const name of ["flatimage.xml", "flatimage-MyApp.xml"]) writeFileSync(join(copy, "packages", name), readFileSync(join(f.xdg, "mime/packages", name)));
    const update = Bun.spawnSync([UPDATE_MIME, "-V", copy]);
    expect(update.stderr.toString()).not.toMatch(/error|warning|invalid/i);
    expect(update.exitCode).toBe(0);
    expect(readFileSync(join(copy, "magic")).includes(Buffer.from("application/flatimage"))).toBe(true);

    // Landscape 300x200: square icons, the picture's width the whole size, its ratio kept,
    // centred between transparent bands; the colour survives.
    for (const size of SIZES) {
      for (const path of [`icons/hicolor/${size}x${size}/apps/flatimage_MyApp.png`, `icons/hicolor/${size}x${size}/mimetypes/application-flatimage_MyApp.png`]) {
        const decoded = await decode(join(f.xdg, path));
        expect([path, decoded.width, decoded.height]).toEqual([path, size, size]);
        expect({ path, rows: decoded.rows, columns: decoded.columns }).toEqual({ path, ...placed(size, 300, 200) });
        expect(decoded.centre).toBe(0xff0000ff);
      }
    }
    for (const logo of ["icons/hicolor/scalable/apps/flatimage.svg", "icons/hicolor/scalable/mimetypes/application-flatimage.svg"]) {
      expect(readFileSync(join(f.xdg, logo), "utf8")).toMatch(/^<\?xml[^]*<svg [^]*<\/svg>\n$/);
    }
    expect(files(f.xdg).filter((path) => path.endsWith(".tmp"))).toEqual([]);
  });

  test("the next run rewrites nothing; after a move and rename it rewrites the paths", () => {
    const f = fixture();
    setUp(f);
    runGuest(f);
    const entry = join(f.xdg, "applications/flatimage-MyApp.desktop");
    const mime = join(f.xdg, "mime/packages/flatimage-MyApp.xml");
    const watched = [entry, mime, join(f.xdg, "mime/mime.cache"), join(f.xdg, "icons/hicolor/64x64/apps/flatimage_MyApp.png")];
    const stamp = () => watched.map((path) => `${statSync(path).ino}:${statSync(path).mtimeMs}`);
    const first = stamp();

    const again = runGuest(f, { FIM_DEBUG: "1" });
    expect(lines(again.stdout)).toContain("D::Skipping mime database update");
    expect(lines(again.stdout)).toContain(`D::Icons are integrated, found '${join(f.xdg, "icons/hicolor/64x64/apps/flatimage_MyApp.png")}'`);
    expect(lines(again.stdout).some((line) => line.startsWith("I::Updating mime database"))).toBe(false);
    expect(stamp()).toEqual(first);

    // Moved to another directory under another name.
    const moved = join(f.image.dir, "elsewhere", "Renamed App.flatimage");
    mkdirSync(join(f.image.dir, "elsewhere"));
    renameSync(f.image.path, moved);
    const result = Bun.spawnSync([moved, "fim-exec", "echo", "moved"], { env: { ...process.env, XDG_DATA_HOME: f.xdg, FIM_DEBUG: "1" }, cwd: f.image.dir });
    expect(result.exitCode).toBe(0);
    expect(lines(result.stdout.toString())).toContain(`I::Updating mime database '${f.xdg}'`);
    expect(readFileSync(entry, "utf8")).toBe(entryOf("MyApp", moved, "Network;System;"));
    expect(readFileSync(mime, "utf8")).toBe(mimeOf("MyApp", "Renamed App.flatimage"));
    expect(readFileSync(join(f.xdg, "mime/globs2"), "utf8")).toMatch(/^100:application\/flatimage_myapp:renamed app\.flatimage$/im);
    expect(Bun.spawnSync([VALIDATE, entry]).exitCode).toBe(0);
    renameSync(moved, f.image.path);
  });

  test("an SVG icon is kept as scalable; clean removes exactly what was written", () => {
    const f = fixture();
    writeFileSync(join(f.xdg, "unrelated.txt"), "mine");
    setUp(f, { ...APP, icon: "icon.svg" });
    runGuest(f);
    const written = files(f.xdg);
    expect(readFileSync(join(f.xdg, "icons/hicolor/scalable/apps/flatimage_MyApp.svg"), "utf8")).toBe(SVG);
    expect(readFileSync(join(f.xdg, "icons/hicolor/scalable/mimetypes/application-flatimage_MyApp.svg"), "utf8")).toBe(SVG);
    expect(written.filter((path) => path.endsWith(".png"))).toEqual([]);
    for (const path of nameFiles("MyApp", "svg")) expect(written).toContain(path);

    const cleaned = f.run(["fim-desktop", "clean"]);
    expect(cleaned.code).toBe(0);
    expect(cleaned.stderr).toBe("");
    expect(lines(cleaned.stdout)).toEqual([
      `I::Removed file '${f.xdg}/applications/flatimage-MyApp.desktop'`,
      `I::Removed file '${f.xdg}/mime/packages/flatimage-MyApp.xml'`,
      `I::Updating mime database '${f.xdg}'`,
      `I::Removed file '${f.xdg}/icons/hicolor/scalable/mimetypes/application-flatimage_MyApp.svg'`,
      `I::Removed file '${f.xdg}/icons/hicolor/scalable/apps/flatimage_MyApp.svg'`,
    ]);
    const after = files(f.xdg);
    // Gone: this name's files and the database's record of its type; kept: the rest.
    expect(after).toEqual(written.filter((path) => !nameFiles("MyApp", "svg").includes(path) && path !== "mime/application/flatimage_myapp.xml"));
    expect(after).toContain("unrelated.txt");
    expect(after).toContain("mime/packages/flatimage.xml");
    expect(after).toContain("icons/hicolor/scalable/apps/flatimage.svg");
    expect(readFileSync(join(f.xdg, "mime/globs2"), "utf8")).not.toMatch(/flatimage_myapp/i);
    // The stored configuration is kept: a clean is undone by the next run.
    expect(f.run(["fim-desktop", "dump", "entry"]).code).toBe(0);
  });

  test("a JPEG icon becomes square PNGs (portrait: centred between transparent columns); clean removes those PNGs", async () => {
    const f = fixture();
    setUp(f, { ...APP, icon: "icon.jpg" });
    runGuest(f);
    for (const size of SIZES) {
      const decoded = await decode(join(f.xdg, `icons/hicolor/${size}x${size}/apps/flatimage_MyApp.png`));
      expect([size, decoded.width, decoded.height]).toEqual([size, size, size]);
      expect({ size, rows: decoded.rows, columns: decoded.columns }).toEqual({ size, ...placed(size, 100, 150) });
    }
    const before = files(f.xdg);
    for (const path of nameFiles("MyApp", "png")) expect(before).toContain(path);
    expect(f.run(["fim-desktop", "clean"]).code).toBe(0);
    const after = files(f.xdg);
    expect(after.filter((path) => path.includes("MyApp"))).toEqual([]);
    expect(after).toEqual(before.filter((path) => !nameFiles("MyApp", "png").includes(path) && path !== "mime/application/flatimage_myapp.xml"));
  });

  test("a name with spaces: a valid entry, MIME type and icons under a name without them; clean removes them", async () => {
    const f = fixture();
    setUp(f, { ...APP, name: "XTerm Sandbox", categories: ["System"] });
    runGuest(f);
    const entry = join(f.xdg, "applications/flatimage-XTerm_Sandbox.desktop");
    const text = readFileSync(entry, "utf8");
    expect(text.split("\n")).toEqual([
      "[Desktop Entry]",
      "Name=XTerm Sandbox",
      "Type=Application",
      'Comment=FlatImage distribution of "XTerm Sandbox"',
      `Exec="${f.image.path}" %F`,
      "Icon=flatimage_XTerm_Sandbox",
      "MimeType=application/flatimage_XTerm_Sandbox;",
      "Categories=System;",
    ]);
    const validated = Bun.spawnSync([VALIDATE, entry]);
    expect(validated.stdout.toString() + validated.stderr.toString()).toBe("");
    expect(validated.exitCode).toBe(0);
    expect(readFileSync(join(f.xdg, "mime/packages/flatimage-XTerm_Sandbox.xml"), "utf8")).toContain('<mime-type type="application/flatimage_XTerm_Sandbox">');
    const copy = mkdtempSync(join(f.image.dir, "mime-"));
    mkdirSync(join(copy, "packages"));
    writeFileSync(join(copy, "packages/flatimage-XTerm_Sandbox.xml"), readFileSync(join(f.xdg, "mime/packages/flatimage-XTerm_Sandbox.xml")));
    const update = Bun.spawnSync([UPDATE_MIME, "-V", copy]);
    expect(update.stderr.toString()).not.toMatch(/error|warning|invalid/i);
    expect(update.exitCode).toBe(0);
    expect(readFileSync(join(copy, "globs2"), "utf8")).toMatch(/^100:application\/flatimage_XTerm_Sandbox:app\.flatimage$/m);
    expect((await decode(join(f.xdg, "icons/hicolor/16x16/apps/flatimage_XTerm_Sandbox.png"))).width).toBe(16);
    expect(files(f.xdg).filter((path) => path.includes("XTerm Sandbox"))).toEqual([]);
    // What earlier versions wrote under the name itself goes with clean too.
    writeFileSync(join(f.xdg, "applications/flatimage-XTerm Sandbox.desktop"), "old");
    expect(f.run(["fim-desktop", "clean"]).code).toBe(0);
    expect(files(f.xdg).filter((path) => path.includes("XTerm"))).toEqual([]);
  });

  test("what the entry and MIME type embed is escaped: no line or key can be added", () => {
    // A name from the reserved space (setup refuses control characters; older data may not).
    const f = fixture("odd;name=x%u [a] *.flatimage");
    const reserved = Number(f.run([], { FIM_MAIN_OFFSET: "" }).stdout.trim());
    const stored = JSON.stringify({ categories: ["Utility", "a;Exec=evil"], integrations: ["ENTRY", "MIMETYPE"], name: ' Evil\nExec=/bin/evil\\ "q" 100% \t<x>&' });
    const fd = openSync(f.image.path, "r+");
    writeSync(fd, Buffer.from(`${stored}\0`), 0, stored.length + 1, reserved + 11);
    closeSync(fd);
    const entry = f.run(["fim-desktop", "dump", "entry"]);
    expect(entry.code).toBe(0);
    const rows = entry.stdout.trimEnd().split("\n");
    expect(rows.map((row) => row.split("=")[0])).toEqual(["[Desktop Entry]", "Name", "Type", "Comment", "Exec", "Icon", "MimeType", "Categories"]);
    expect(rows[1]).toBe('Name=\\sEvil\\nExec=/bin/evil\\\\ "q" 100% \\t<x>&');
    expect(rows[4]).toBe(`Exec="${f.image.path.replace(/%/g, "%%")}" %F`);
    expect(rows[5]).toBe("Icon=flatimage__Evil_Exec__bin_evil___q__100____x__");
    expect(rows[7]).toBe("Categories=Utility;a\\;Exec=evil;");
    const file = join(f.image.dir, "check.desktop");
    writeFileSync(file, entry.stdout);
    // The validator complains only that such categories are not registered ones.
    const validated = Bun.spawnSync([VALIDATE, file]);
    const complaints = (validated.stdout.toString() + validated.stderr.toString()).split("\n").filter((line) => line !== "");
    expect(complaints.filter((line) => !line.includes('for key "Categories"'))).toEqual([]);
    const mime = f.run(["fim-desktop", "dump", "mimetype"]);
    expect(mime.code).toBe(0);
    expect(mime.stdout.split("\n")).toHaveLength(10);
    expect(mime.stdout).toContain('<mime-type type="application/flatimage__Evil_Exec__bin_evil___q__100____x__">');
    expect(mime.stdout).toContain('<glob weight="100" pattern="odd;name=x%u [[]a] [*].flatimage"/>');
    const copy = mkdtempSync(join(f.image.dir, "mime-"));
    mkdirSync(join(copy, "packages"));
    writeFileSync(join(copy, "packages/odd.xml"), mime.stdout);
    const update = Bun.spawnSync([UPDATE_MIME, "-V", copy]);
    expect(update.stderr.toString()).not.toMatch(/error|warning|invalid/i);
    expect(update.exitCode).toBe(0);
  });

  test("XDG_DATA_HOME unset: under $HOME/.local/share", () => {
    const f = fixture();
    setUp(f, { ...APP, integrations: ["entry"] });
    const home = join(f.image.dir, "home");
    mkdirSync(home);
    // A runtime directory of its own: the stub would otherwise pick ~/.cache/fim under this
    // HOME when /tmp/fim is not usable (made by another user), and the run's files would be here.
    const xdg = privateRuntimeDir();
    try {
      runGuest(f, { XDG_DATA_HOME: undefined, HOME: home, XDG_RUNTIME_DIR: xdg.dir });
    } finally {
      xdg.cleanup();
    }
    expect(files(home)).toEqual([".local/share/applications/flatimage-MyApp.desktop"]);
  });

  test("a failing integration never aborts the run, and leaves no partial file", () => {
    const f = fixture();
    setUp(f);
    // No update-mime-database on PATH: the MIME step fails after writing its files whole.
    const bin = join(f.image.dir, "bin");
    mkdirSync(bin);
    const result = runGuest(f, { PATH: bin, FIM_DEBUG: "1" });
    const warnings = lines(result.stderr).filter((line) => line.startsWith("W::") && !line.includes("XDG_RUNTIME_DIR"));
    expect(warnings).toEqual([
      "W::Could not find 'update-mime-database' in PATH (install shared-mime-info)",
      "W::Could not perform desktop integration",
    ]);
    expect(files(f.xdg)).toEqual(["applications/flatimage-MyApp.desktop", "mime/packages/flatimage-MyApp.xml", "mime/packages/flatimage.xml"]);
    expect(runGuest(f).stderr).toBe(""); // quiet without FIM_DEBUG
  });

  test("a corrupt stored configuration is skipped with a W trace", () => {
    const f = fixture();
    const reserved = Number(f.run([], { FIM_MAIN_OFFSET: "" }).stdout.trim());
    const fd = openSync(f.image.path, "r+");
    writeSync(fd, Buffer.from('{"name": \0'), 0, 10, reserved + 11);
    closeSync(fd);
    const result = runGuest(f, { FIM_DEBUG: "1" });
    expect(lines(result.stderr).filter((line) => line.startsWith("W::") && !line.includes("XDG_RUNTIME_DIR"))).toEqual([
      `W::Corrupt desktop data in the reserved space of '${f.image.path}': invalid JSON`,
      "W::Missing or misconfigured desktop integration",
      "W::Could not perform desktop integration",
    ]);
    expect(files(f.xdg)).toEqual([]);
  });
});

describe("start notification (fim-notify on)", () => {
  function fakeNotifier(f: Fixture): { bin: string; log: string } {
    const bin = join(f.image.dir, "notifier");
    mkdirSync(bin);
    const log = join(f.image.dir, "notify.log");
    writeFileSync(join(bin, "notify-send"), `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > '${log}'\n`);
    chmodSync(join(bin, "notify-send"), 0o755);
    symlinkSync(UPDATE_MIME, join(bin, "update-mime-database"));
    return { bin, log };
  }

  test("notify-send is called with the icon and the name", () => {
    const f = fixture();
    setUp(f);
    const { bin, log } = fakeNotifier(f);
    expect(f.run(["fim-notify", "on"]).code).toBe(0);
    runGuest(f, { PATH: bin });
    expect(readFileSync(log, "utf8")).toBe(`-i\n${f.xdg}/icons/hicolor/64x64/apps/flatimage_MyApp.png\nStarted 'MyApp' FlatImage\n`);
    // An SVG icon: the scalable one is named.
    rmSync(f.xdg, { recursive: true });
    setUp(f, { ...APP, icon: "icon.svg" });
    runGuest(f, { PATH: bin });
    expect(readFileSync(log, "utf8")).toBe(`-i\n${f.xdg}/icons/hicolor/scalable/apps/flatimage_MyApp.svg\nStarted 'MyApp' FlatImage\n`);
  });

  test("off, or no desktop configuration: no notification", () => {
    const f = fixture();
    const { bin, log } = fakeNotifier(f);
    f.run(["fim-notify", "on"]);
    runGuest(f, { PATH: bin });
    expect(existsSync(log)).toBe(false);
    setUp(f);
    f.run(["fim-notify", "off"]);
    runGuest(f, { PATH: bin });
    expect(existsSync(log)).toBe(false);
  });

  test("a host without notify-send, or with a failing one, still runs the program", () => {
    const f = fixture();
    setUp(f, { ...APP, integrations: ["entry", "icon"] });
    f.run(["fim-notify", "on"]);
    const empty = join(f.image.dir, "empty");
    mkdirSync(empty);
    const without = runGuest(f, { PATH: empty, FIM_DEBUG: "1" });
    expect(lines(without.stdout)).toContain("D::Could not find 'notify-send' in PATH: no start notification");
    const failing = join(f.image.dir, "failing");
    mkdirSync(failing);
    writeFileSync(join(failing, "notify-send"), "#!/bin/sh\necho 'cannot connect' >&2\nexit 1\n");
    chmodSync(join(failing, "notify-send"), 0o755);
    const failed = runGuest(f, { PATH: failing, FIM_DEBUG: "1" });
    expect(lines(failed.stdout)).toContain("D::notify-send failed with exit code: 1");
    expect(failed.stderr).not.toContain("cannot connect");
  });
});
