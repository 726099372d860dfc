// What upstream's command-line suite expects of the blueprint image, each checked directly,
// with LC_ALL=C.UTF-8 set on the host (common in containers and CI) and with no locale
// variables at all. The guest's shell must add nothing to stderr in either case.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { buildImage, freshImage, lines, type TestImage } from "../helpers/image.ts";

/** Every locale variable of this process, unset. */
const NO_LOCALE = Object.fromEntries(Object.keys(process.env).filter((key) => key === "LANG" || key === "LANGUAGE" || key.startsWith("LC_")).map((key) => [key, undefined]));

const LOCALES: [string, Record<string, string | undefined>][] = [
  ["LC_ALL=C.UTF-8", { ...NO_LOCALE, LC_ALL: "C.UTF-8" }],
  ["no locale variables", NO_LOCALE],
];

describe.each(LOCALES)("upstream expectations, %s", (_label, locale) => {
  let image: TestImage;
  const run = (args: string[], env: Record<string, string | undefined> = {}) => image.run(args, { env: { ...locale, ...env } });

  beforeAll(() => (image = freshImage()));
  afterAll(() => image.cleanup());

  test("a run adds nothing to the guest's output (no setlocale warning from its shell)", () => {
    expect(run(["fim-exec", "true"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(run(["fim-exec", "bash", "-c", 'echo "$LC_ALL"'])).toEqual({ code: 0, stdout: `${locale.LC_ALL ?? ""}\n`, stderr: "" });
    expect(run(["fim-root", "sh", "-c", "exit 3"])).toEqual({ code: 3, stdout: "", stderr: "" });
  });

  test("fim-bind add with a bad type says 'Invalid bind type', whatever follows it", () => {
    for (const args of [["fim-bind", "add", "roo", "/src", "/dst"], ["fim-bind", "add", "roo"]]) {
      const result = run(args);
      expect(result.code).toBe(125);
      expect(result.stdout).toBe("");
      expect(lines(result.stderr)).toEqual(["C::Invalid bind type 'roo': did you mean 'ro'?", "C::Could not parse arguments", "C::The program exited with an error"]);
    }
    expect(run(["fim-bind", "list"])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("fim-env expands keys too", () => {
    const add = run(["fim-env", "add", "$(echo $META)=WORLD"]);
    expect(add.code).toBe(0);
    expect(add.stderr).toBe("");
    expect(lines(add.stdout)).toEqual(["I::Included variable '$(echo $META)' with value 'WORLD'"]);
    expect(run(["fim-env", "list"], { META: "NAME" })).toEqual({ code: 0, stdout: "NAME=WORLD\n", stderr: "" });
    expect(run(["fim-exec", "sh", "-c", 'echo "$NAME"'], { META: "NAME" })).toEqual({ code: 0, stdout: "WORLD\n", stderr: "" });
    run(["fim-env", "clear"]);
  });

  test("fim-root is root, by name too, when UID and GID are stored", () => {
    expect(run(["fim-env", "add", "UID=1234", "GID=1234"]).code).toBe(0);
    expect(run(["fim-root", "whoami"])).toEqual({ code: 0, stdout: "root\n", stderr: "" });
    expect(run(["fim-root", "id", "-u"])).toEqual({ code: 0, stdout: "0\n", stderr: "" });
    expect(run(["fim-exec", "id", "-u"])).toEqual({ code: 0, stdout: "1234\n", stderr: "" });
    run(["fim-env", "clear"]);
    expect(run(["fim-root", "whoami"])).toEqual({ code: 0, stdout: "root\n", stderr: "" });
  });

  test("guest programs are started through the shell: builtins work", () => {
    expect(run(["fim-exec", "command", "-v", "jq"])).toEqual({ code: 1, stdout: "", stderr: "" });
    const busybox = run(["fim-exec", "command", "-v", "busybox"]);
    expect(busybox.code).toBe(0);
    expect(busybox.stdout).toEndWith("/bin/busybox\n");
    expect(run(["fim-exec", "type", "-t", "cd"])).toEqual({ code: 0, stdout: "builtin\n", stderr: "" });
    // The shell that starts the guest runs the builtin itself (it used to exec a second bash for it).
    expect(run(["fim-exec", "eval", 'tr "\\0" " " </proc/$$/cmdline; echo']).stdout).toMatch(/\/bash -c "\$@" -- eval /);
    expect(run(["fim-exec", "exit", "7"]).code).toBe(7);
    // Its $0 is `--`, as in upstream's `bash -c '"<program>" "$@"' -- …` (reference §9).
    expect(run(["fim-exec", "cd", "/nope"])).toEqual({ code: 1, stdout: "", stderr: "--: line 1: cd: /nope: No such file or directory\n" });
    expect(run(["fim-root", "command", "-v", "cd"])).toEqual({ code: 0, stdout: "cd\n", stderr: "" });
    // The boot command too, and a program that is not a builtin still runs as itself.
    expect(run(["fim-boot", "set", "command", "-v"]).code).toBe(0);
    expect(run(["cd"])).toEqual({ code: 0, stdout: "cd\n", stderr: "" });
    run(["fim-boot", "clear"]);
    expect(run(["fim-exec", "sh", "-c", 'echo "$0"'])).toEqual({ code: 0, stdout: "sh\n", stderr: "" });
  });

  test("fim-casefold off after on warns that casefold fell back to unionfs, as upstream's configuration step does", () => {
    expect(run(["fim-casefold", "on"])).toEqual({ code: 0, stdout: "", stderr: "" });
    const off = run(["fim-casefold", "off"]);
    expect(off.code).toBe(0);
    expect(off.stdout).toBe("");
    expect(lines(off.stderr)).toEqual(["W::casefold cannot be used with bwrap overlayfs, falling back to unionfs"]);
    expect(run(["fim-casefold", "off"])).toEqual({ code: 0, stdout: "", stderr: "" });
    expect(run(["fim-overlay", "show"]).stdout).toBe("BWRAP\n");
  });

  test("fim-recipe install says which cached recipes it uses, on stdout", () => {
    const cache = join(image.dir, ".app.flatimage.data/recipes/blueprint/latest");
    mkdirSync(cache, { recursive: true });
    writeFileSync(join(cache, "tool.json"), JSON.stringify({ description: "A tool", packages: ["tool"], dependencies: ["lib"] }));
    writeFileSync(join(cache, "lib.json"), JSON.stringify({ description: "A library", packages: ["lib"] }));
    const result = run(["fim-recipe", "install", "tool"]);
    expect(lines(result.stdout)).toEqual([`I::Using existing recipe from '${cache}/tool.json'`, `I::Using existing recipe from '${cache}/lib.json'`]);
    // Blueprint has no package manager (upstream's message, after the cached walk).
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(["E::Blueprint does not support recipes", "C::The program exited with an error"]);
  });
});

describe("the recipe remote a fresh image has", () => {
  test("is written at build time: the bundle's (none for blueprint), or --remote", () => {
    const fresh = freshImage();
    try {
      const none = fresh.run(["fim-remote", "show"]);
      expect(none.code).toBe(125);
      expect(lines(none.stderr)).toEqual(["E::No remote URL configured", "E::Failed to get remote URL", "C::The program exited with an error"]);
      const path = join(fresh.dir, "remote.flatimage");
      buildImage("blueprint", path, ["--remote", "https://recipes.example.com/repo"]);
      const built = freshImage(path);
      try {
        expect(built.run(["fim-remote", "show"])).toEqual({ code: 0, stdout: "https://recipes.example.com/repo\n", stderr: "" });
        // The rest of the reserved space is as fresh as ever.
        expect(built.run(["fim-perms", "list"])).toEqual({ code: 0, stdout: "", stderr: "" });
        expect(built.run(["fim-remote", "clear"]).code).toBe(0);
        expect(built.run(["fim-remote", "show"]).code).toBe(125);
      } finally {
        built.cleanup();
      }
    } finally {
      fresh.cleanup();
    }
  }, 120_000);
});
