// What a new user runs into first: misspelt words, asking for help, and damaged images.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { closeSync, openSync, readFileSync, truncateSync, writeSync } from "node:fs";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const PARSE_END = ["C::Could not parse arguments", "C::The program exited with an error"];

describe("a misspelt word is named, with the word it most likely meant", () => {
  test("permissions; nothing is stored", () => {
    const result = image.run(["fim-perms", "add", "xorg,netwrok"]);
    expect(result.code).toBe(125);
    expect(result.stdout).toBe("");
    expect(lines(result.stderr)).toEqual(["C::Invalid permission 'netwrok': did you mean 'network'?", "C::Failed to process permissions", ...PARSE_END]);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("");
  });

  test("command names", () => {
    const result = image.run(["fim-perm", "list"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(["C::Unknown command: fim-perm: did you mean 'fim-perms'?", "C::Invalid fim command", ...PARSE_END]);
    expect(lines(image.run(["fim-unshrae"]).stderr)[0]).toBe("C::Unknown command: fim-unshrae: did you mean 'fim-unshare'?");
  });

  test("operations, overlay types, unshare options, switches", () => {
    expect(lines(image.run(["fim-perms", "ad", "home"]).stderr)[0]).toBe("C::Invalid perms operation 'ad': did you mean 'add'?");
    expect(lines(image.run(["fim-overlay", "set", "unoinfs"]).stderr)[0]).toBe("C::Invalid overlay type 'unoinfs': did you mean 'unionfs'?");
    expect(lines(image.run(["fim-overlay", "shwo"]).stderr)[0]).toBe("C::Invalid overlay operation 'shwo': did you mean 'show'?");
    expect(lines(image.run(["fim-unshare", "add", "ipc,nett"]).stderr)[0]).toBe("C::Invalid unshare option 'nett': did you mean 'net'?");
    expect(lines(image.run(["fim-notify", "of"]).stderr)[0]).toBe("C::Invalid notify switch 'of': did you mean 'off'?");
    expect(image.run(["fim-overlay", "show"]).stdout).toBe("BWRAP\n");
  });
});

describe("help that was asked for", () => {
  test("fim-<cmd> --help and -h print that command's help, like fim-help <cmd> and fim-help fim-<cmd>", () => {
    const reference = image.run(["fim-help", "perms"]);
    expect(reference.code).toBe(0);
    expect(reference.stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-perms : ");
    for (const args of [["fim-perms", "--help"], ["fim-perms", "-h"], ["fim-help", "fim-perms"]]) {
      expect(image.run(args)).toEqual({ code: 0, stdout: reference.stdout, stderr: "" });
    }
    expect(image.run(["fim-exec", "--help"]).stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-exec : ");
    expect(image.run(["fim-help", "--help"]).stdout).toStartWith("Flatimage - Portable Linux Applications\nfim-help : ");
  });

  test("goes to stdout (fim-help | less); errors stay on stderr", () => {
    const general = image.run(["fim-help"]);
    expect(general.code).toBe(0);
    expect(general.stderr).toBe("");
    expect(general.stdout).toContain("Note: Available commands: fim-{");
    const error = image.run(["fim-perms"]);
    expect(error.code).toBe(125);
    expect(error.stdout).toBe("");
    expect(lines(error.stderr)[0]).toBe("C::Missing op for fim-perms (add,del,list,set,clear)");
  });
});

describe("a damaged image", () => {
  let copy: TestImage;
  let reserved: number;
  beforeAll(() => {
    copy = freshImage(image.path, "damaged.flatimage");
    reserved = Number(copy.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
  });
  afterAll(() => copy.cleanup());

  const poke = (position: number, bytes: Buffer) => {
    const fd = openSync(copy.path, "r+");
    writeSync(fd, bytes, 0, bytes.length, position);
    closeSync(fd);
  };

  test("a flipped permission byte grants nothing: a warning says so, and writing the permissions again repairs it", () => {
    // `network` shows the host's /etc/hosts (the image's is empty), for root and users alike.
    const hosts = readFileSync("/etc/hosts", "utf8");
    expect(hosts).not.toBe("");
    {
      const look = () => copy.run(["fim-exec", "sh", "-c", "cat /etc/hosts; echo end"]);
      expect(copy.run(["fim-perms", "set", "network"]).code).toBe(0);
      expect(look()).toEqual({ code: 0, stdout: `${hosts}end\n`, stderr: "" });
      poke(reserved + 2, Buffer.from([0xff])); // bits 16..23: no permission uses them
      const warning = "The permissions in the reserved space are damaged (bits 0xff0000 are set, which no name uses): no permission is granted; 'fim-perms set …' or 'fim-perms clear' rewrites it";
      expect(copy.run(["fim-perms", "list"])).toEqual({ code: 0, stdout: "", stderr: expect.stringContaining(warning) });
      expect(lines(copy.run(["fim-perms", "list"]).stderr)).toEqual([`W::${warning}`]);
      // A run says it once, at the level a run shows, and gets no permission.
      const run = look();
      expect(run.code).toBe(0);
      expect(run.stdout).toBe("end\n");
      expect(lines(run.stderr)).toEqual([`C::${warning}`]);
      expect(copy.run(["fim-perms", "set", "network"])).toEqual({ code: 0, stdout: "", stderr: "" });
      expect(look()).toEqual({ code: 0, stdout: `${hosts}end\n`, stderr: "" });
      expect(copy.run(["fim-perms", "clear"]).code).toBe(0);
    }
  });

  test("a damaged boot slot is an error naming it, not a silent bash; fim-boot set repairs it", () => {
    expect(copy.run(["fim-boot", "set", "echo", "booted"]).code).toBe(0);
    expect(copy.run([])).toEqual({ code: 0, stdout: "booted\n", stderr: "" });
    poke(reserved + 4107 + 3, Buffer.from("\x01garbage"));
    const hint = "C::The boot command stored in the image is damaged: store it again with 'fim-boot set <program> [args...]' (or 'fim-boot clear')";
    const run = copy.run([]);
    expect(run.code).toBe(125);
    expect(run.stdout).toBe("");
    expect(lines(run.stderr)).toEqual([hint, "C::The program exited with an error"]);
    const show = copy.run(["fim-boot", "show"]);
    expect(show.code).toBe(125);
    expect(lines(show.stderr)).toEqual([`E::Corrupt boot data in the reserved space of '${copy.path}': invalid JSON`, hint, "E::Failed to read boot configuration", "C::The program exited with an error"]);
    expect(copy.run(["fim-boot", "set", "echo", "again"]).code).toBe(0);
    expect(copy.run([]).stdout).toBe("again\n");
    expect(copy.run(["fim-boot", "clear"]).code).toBe(0);
  });

  test("a layer whose header is damaged is an error naming the layer", () => {
    const layers = reserved + 4 * 1024 * 1024;
    const original = readFileSync(copy.path).subarray(layers + 8 + 1024, layers + 8 + 1028);
    poke(layers + 8 + 1024, Buffer.from("XXXX")); // the EROFS magic of layer 0
    const result = copy.run(["fim-exec", "true"]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual([`C::The image '${copy.path}' is damaged: layer 0 at offset ${layers + 8} (${readFileSync(copy.path).readBigUInt64LE(layers)} bytes): not a layer of a known format`, "C::The program exited with an error"]);
    poke(layers + 8 + 1024, original);
    expect(copy.run(["fim-exec", "true"])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("a truncated layer is an error naming it (exit 125), not a run on an empty root", () => {
    const size = readFileSync(copy.path).length;
    truncateSync(copy.path, size - 1000);
    const layers = reserved + 4 * 1024 * 1024;
    const expected = `C::The image '${copy.path}' is damaged (truncated?): layer 0 at offset ${layers} needs ${size - layers - 8} bytes, but the file ends after ${size - layers - 8 - 1000}`;
    for (const args of [["fim-exec", "true"], ["fim-layer", "list"]]) {
      const result = copy.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toContain(expected);
    }
  });
});
