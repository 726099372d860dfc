import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const TOPICS = ["bind", "boot", "cache", "casefold", "desktop", "env", "exec", "instance", "layer", "notify", "overlay", "perms", "portal", "recipe", "remote", "root", "unshare", "version"];

describe("fim-version", () => {
  test("short, full and deps", () => {
    const short = image.run(["fim-version", "short"]);
    expect(short.stdout).toMatch(/^v\d+\.\d+\.\d+\n$/);
    const full = image.run(["fim-version", "full"]);
    expect(full.code).toBe(0);
    const info = JSON.parse(full.stdout);
    expect(Object.keys(info)).toEqual(["COMMIT", "DISTRIBUTION", "TIMESTAMP", "VERSION"]);
    expect(info.DISTRIBUTION).toBe("BLUEPRINT");
    expect(info.TIMESTAMP).toMatch(/^\d{14}$/);
    expect(info.COMMIT).toMatch(/^[0-9a-f]{7}$/);
    expect(`${info.VERSION}\n`).toBe(short.stdout);
    const deps = JSON.parse(image.run(["fim-version", "deps"]).stdout) as Record<string, { sha: string }>;
    for (const dep of Object.values(deps)) expect(dep.sha).toMatch(/^[0-9a-f]{64}$/);
  });

  test("errors", () => {
    for (const [args, message] of [
      [["fim-version"], "Missing op for 'fim-version' (<short|full|deps>)"],
      [["fim-version", "long"], "Invalid version operation 'long' (one of: short, full, deps)"],
      [["fim-version", "none"], "Invalid operation for fim-version"],
      [["fim-version", "short", "x"], "Trailing arguments for fim-version: ['x',]"],
    ] as [string[], string][]) {
      const result = image.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([`C::${message}`, "C::Could not parse arguments", "C::The program exited with an error"]);
    }
  });
});

describe("fim-help", () => {
  test("general help goes to stdout (upstream: stderr) and lists the commands", () => {
    const result = image.run(["fim-help"]);
    expect(result.code).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-help : ");
    expect(result.stdout).toContain(`Note: Available commands: fim-{${TOPICS.join(",")}}\n`);
    expect(result.stdout).toEndWith("Example: fim-help bind\n\n");
  });

  test("every topic prints its usage on stdout; extra words are ignored", () => {
    for (const topic of TOPICS) {
      const result = image.run(["fim-help", topic, "ignored"]);
      expect(result.code).toBe(0);
      const text = result.stdout.split("\n");
      expect(text[0]).toBe("Flatimage - Portable Linux Applications");
      expect(text[1]).toStartWith(`fim-${topic} : `);
      expect(text[2]).toStartWith(`Usage: fim-${topic} `);
    }
    expect(image.run(["fim-help", "perms"]).stdout).toContain(
      "Note: Permissions: all,audio,dbus_system,dbus_user,dev,gpu,home,input,media,network,optical,shm,udev,usb,wayland,xorg\n",
    );
  });

  test("unknown topic", () => {
    const result = image.run(["fim-help", "nope"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(["C::Invalid argument for help command: nope", "C::Could not parse arguments", "C::The program exited with an error"]);
    expect(lines(image.run(["fim-help", "prems"]).stderr)[0]).toBe("C::Invalid argument for help command: prems: did you mean 'perms'?");
  });
});

describe("dispatch and diagnostics", () => {
  test("unknown fim- command", () => {
    const result = image.run(["fim-foo"]);
    expect(result.code).toBe(125);
    expect(result.stdout).toBe("");
    expect(lines(result.stderr)).toEqual(["C::Unknown command: fim-foo", "C::Invalid fim command", "C::Could not parse arguments", "C::The program exited with an error"]);
    // Only lower-case fim- words are commands: anything else is the boot program's argument.
    expect(image.run(["FIM-PERMS", "list"]).code).toBe(127);
  });

  test("lines have the L::a::b::msg shape; D and I on stdout, W E C on stderr", () => {
    const debug = image.run(["fim-env", "add", "X=1"], { env: { FIM_DEBUG: "1" } });
    for (const line of debug.stdout.trim().split("\n")) expect(line).toMatch(/^[DI]::[^:]+::\d+::./);
    expect(debug.stdout).toContain("D::boot::"); // the stub's relocation trace
    const warning = image.run(["fim-overlay", "show"], { env: { FIM_CASEFOLD: "1" } });
    expect(warning.stderr).toMatch(/^W::[^:]+::\d+::casefold cannot be used/);
  });

  test("FIM_MAIN_OFFSET prints the reserved-space offset", () => {
    const result = image.run(["fim-perms", "list"], { env: { FIM_MAIN_OFFSET: "" } });
    expect(result.code).toBe(0);
    const offset = Number(result.stdout.trim());
    expect(offset).toBeGreaterThan(1_000_000);
    expect(readFileSync(image.path).subarray(8, 11)).toEqual(Buffer.from([0x46, 0x49, 0x01]));
  });

  test("configuration writes work while another process of the image runs", async () => {
    // `fim-env list` runs the stored $(…): it blocks on a FIFO the test holds.
    const gate = join(image.dir, "gate");
    expect(Bun.spawnSync(["mkfifo", gate]).exitCode).toBe(0);
    image.run(["fim-env", "set", `SLOW=$(echo started >&2; read line < ${gate})`]);
    const slow = Bun.spawn([image.path, "fim-env", "list"], { stdout: "pipe", stderr: "pipe" });
    const reader = slow.stderr.getReader();
    while (!new TextDecoder().decode((await reader.read()).value).includes("started"));
    reader.releaseLock();
    const write = image.run(["fim-perms", "add", "home"]);
    expect(write.code).toBe(0);
    expect(slow.exitCode).toBe(null); // it did not wait for the running one
    require("node:fs").writeFileSync(gate, "go\n");
    expect(await slow.exited).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("home\n");
    image.run(["fim-env", "clear"]);
    image.run(["fim-perms", "clear"]);
  });
});

describe("damaged images", () => {
  test("a truncated image is refused with a clear message", () => {
    const copy = freshImage(image.path, "cut.flatimage");
    try {
      const offset = Number(copy.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
      truncateSync(copy.path, offset + 1000);
      for (const args of [["fim-perms", "list"], ["fim-perms", "add", "home"]]) {
        const result = copy.run(args);
        expect(result.code).toBe(125);
        expect(result.stderr).not.toContain("    at ");
        expect(lines(result.stderr)[0]).toMatch(/^E::'.*cut\.flatimage' is truncated: the reserved space/);
        expect(lines(result.stderr)).toContain("C::Failure to relocate binary");
      }
    } finally {
      copy.cleanup();
    }
  });

  test("a corrupt header is refused", () => {
    const copy = freshImage(image.path, "bad.flatimage");
    try {
      const offset = Number(copy.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
      const bytes = readFileSync(copy.path);
      const header = Number(bytes.readBigUInt64LE(0x28)) + bytes.readUInt16LE(0x3a) * bytes.readUInt16LE(0x3c); // ELF end
      expect(bytes.subarray(header, header + 8).toString("latin1")).toBe("FIMAGE\0\x03");
      expect(header).toBeLessThan(offset);
      const fd = openSync(copy.path, "r+");
      writeSync(fd, Buffer.from("{{{{"), 0, 4, header + 44);
      closeSync(fd);
      const result = copy.run(["fim-perms", "list"]);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)[0]).toMatch(/has a corrupt image header \(invalid JSON\)$/);
    } finally {
      copy.cleanup();
    }
  });

  test("corrupt JSON in the reserved space is an error, not a crash", () => {
    const copy = freshImage(image.path, "rsv.flatimage");
    try {
      const offset = Number(copy.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
      const fd = openSync(copy.path, "r+");
      writeSync(fd, Buffer.from('{"A": 1'), 0, 7, offset + 1060875);
      writeSync(fd, Buffer.from('{"0": {"src": "/a"}}'), 0, 20, offset + 2109451);
      closeSync(fd);
      const env = copy.run(["fim-env", "list"]);
      expect(env.code).toBe(125);
      expect(lines(env.stderr)).toEqual([
        `E::Corrupt environment data in the reserved space of '${copy.path}': invalid JSON`,
        "E::Failed to list variables",
        "C::The program exited with an error",
      ]);
      const bind = copy.run(["fim-bind", "list"]);
      expect(bind.code).toBe(125);
      expect(lines(bind.stderr)[0]).toMatch(/^E::Corrupt bindings data in the reserved space of '.*': 0\.dst: /);
      // A write on top of corrupt data refuses instead of silently discarding it.
      expect(copy.run(["fim-env", "add", "B=2"]).code).toBe(125);
      // Damaged boot data is an error (upstream treated it as empty and ran bash).
      const fd2 = openSync(copy.path, "r+");
      writeSync(fd2, Buffer.from("garbage"), 0, 7, offset + 4107);
      closeSync(fd2);
      const boot = copy.run(["fim-boot", "show"]);
      expect(boot.code).toBe(125);
      expect(boot.stdout).toBe("");
      expect(lines(boot.stderr)).toContain("C::The boot command stored in the image is damaged: store it again with 'fim-boot set <program> [args...]' (or 'fim-boot clear')");
    } finally {
      copy.cleanup();
    }
  });

  test("the bare launcher (no image payload) explains itself", () => {
    const boot = image.run(["fim-version", "short"]); // makes sure a relocated copy exists
    expect(boot.code).toBe(0);
    image.run(["fim-env", "set", "APP=$FIM_DIR_APP"]);
    const app = `${image.run(["fim-env", "list"]).stdout.trim().slice("APP=".length)}/bin/fim_boot`;
    expect(app).toStartWith(`/tmp/fim/app/${process.getuid!()}/`);
    image.run(["fim-env", "clear"]);
    const env = { ...process.env };
    delete env.FIM_BIN_SELF;
    const result = Bun.spawnSync([app, "fim-perms", "list"], { env, stdout: "pipe", stderr: "pipe" });
    expect(result.exitCode).toBe(125);
    expect(lines(result.stderr.toString())).toEqual([
      "E::Could not read variable 'FIM_BIN_SELF'",
      "C::This is a bare launcher without an image: run an image file (e.g. dist/<bundle>.flatimage) instead",
      "C::The program exited with an error",
    ]);
    const notImage = Bun.spawnSync([app, "fim-perms", "list"], { env: { ...env, FIM_BIN_SELF: "/etc/hostname" }, stdout: "pipe", stderr: "pipe" });
    expect(notImage.exitCode).toBe(125);
    expect(notImage.stderr.toString()).toContain("'/etc/hostname' is not an ELF executable");
  });
});
