import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

describe("fim-env", () => {
  test("add logs each variable on stdout and list prints them sorted", () => {
    image.run(["fim-env", "clear"]);
    const added = image.run(["fim-env", "add", "ZED=last", "ALPHA=first", "EQ=a=b"]);
    expect(added.code).toBe(0);
    expect(lines(added.stdout)).toEqual([
      "I::Included variable 'ZED' with value 'last'",
      "I::Included variable 'ALPHA' with value 'first'",
      "I::Included variable 'EQ' with value 'a=b'",
    ]);
    expect(added.stderr).toBe("");
    expect(image.run(["fim-env", "list"]).stdout).toBe("ALPHA=first\nEQ=a=b\nZED=last\n");
  });

  test("values are expanded like a shell word, without truncation or injection", () => {
    image.run(["fim-env", "clear"]);
    const marker = `${image.dir}/injected`;
    image.run([
      "fim-env", "add",
      "SPACE=hello world",
      "HOMEISH=$HOME/Documents",
      "BRACED=${FIM_TEST_VALUE}-x",
      "DEFAULTED=${FIM_TEST_UNSET:-fallback}",
      "SUB=$(echo hi)",
      "QUOTED=\"q w\"",
      `INJECT=a;touch ${marker}`,
      "PIPE=a|b",
      "PS1=[app] \\W > ",
      "SINGLE='$HOME'",
      "UNSET=$FIM_TEST_UNSET",
    ]);
    const listed = image.run(["fim-env", "list"], { env: { HOME: "/home/tester", FIM_TEST_VALUE: "v" } });
    expect(listed.code).toBe(0);
    expect(listed.stdout.split("\n")).toEqual([
      "BRACED=v-x",
      "DEFAULTED=fallback",
      "HOMEISH=/home/tester/Documents",
      `INJECT=a;touch ${marker}`,
      "PIPE=a|b",
      "PS1=[app] \\W > ",
      "QUOTED=q w",
      "SINGLE=$HOME",
      "SPACE=hello world",
      "SUB=hi",
      "UNSET=",
      "",
    ]);
    expect(require("node:fs").existsSync(marker)).toBe(false);
  });

  test("a value that cannot be expanded is listed literally with WRDE_SYNTAX on stderr", () => {
    image.run(["fim-env", "set", "BAD=\"unterminated"]);
    const listed = image.run(["fim-env", "list"]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toBe('BAD="unterminated\n');
    expect(lines(listed.stderr)[0]).toStartWith("E::WRDE_SYNTAX");
  });

  test("set replaces everything; an invalid entry changes nothing", () => {
    image.run(["fim-env", "set", "ONE=1", "TWO=2"]);
    expect(image.run(["fim-env", "list"]).stdout).toBe("ONE=1\nTWO=2\n");
    const bad = image.run(["fim-env", "set", "THREE=3", "novalue"]);
    expect(bad.code).toBe(125);
    expect(lines(bad.stderr)).toEqual(["C::Variable assignment 'novalue' is invalid", "E::Failed to set variables", "C::The program exited with an error"]);
    expect(image.run(["fim-env", "list"]).stdout).toBe("ONE=1\nTWO=2\n");
    const empty = image.run(["fim-env", "add", "=value"]);
    expect(lines(empty.stderr)[0]).toBe("C::Variable assignment '=value' is invalid");
  });

  test("a repeated key in one call: the last one wins", () => {
    image.run(["fim-env", "set", "K=first", "K=second"]);
    expect(image.run(["fim-env", "list"]).stdout).toBe("K=second\n");
  });

  test("del reports found and missing keys; clear empties", () => {
    image.run(["fim-env", "set", "A=1", "B=2"]);
    const deleted = image.run(["fim-env", "del", "A", "MISSING"]);
    expect(deleted.code).toBe(0);
    expect(lines(deleted.stdout)).toEqual(["I::Erase key 'A'", "I::Key 'MISSING' not found for deletion"]);
    expect(image.run(["fim-env", "list"]).stdout).toBe("B=2\n");
    expect(image.run(["fim-env", "clear"])).toMatchObject({ code: 0, stdout: "" });
    expect(image.run(["fim-env", "list"]).stdout).toBe("");
  });

  test("parse errors", () => {
    const cases: [string[], string[]][] = [
      [["fim-env"], ["Missing op for 'fim-env' (add,del,list,set,clear)"]],
      [["fim-env", "foo"], ["Invalid env operation 'foo' (one of: add, set, del, list, clear)"]],
      [["fim-env", "none"], ["Invalid operation for environment"]],
      [["fim-env", "add"], ["Missing arguments for 'ADD'", "Failed to process variables"]],
      [["fim-env", "set"], ["Missing arguments for 'SET'", "Failed to process variables"]],
      [["fim-env", "del"], ["Missing arguments for 'DEL'", "Failed to process variables"]],
      [["fim-env", "list", "x"], ["Trailing arguments for fim-env: ['x',]"]],
      [["fim-env", "clear", "x", "y"], ["Trailing arguments for fim-env: ['x','y',]"]],
    ];
    for (const [args, messages] of cases) {
      const result = image.run(args);
      expect(result.code).toBe(125);
      expect(lines(result.stderr)).toEqual([...messages.map((m) => `C::${m}`), "C::Could not parse arguments", "C::The program exited with an error"]);
    }
  });

  test("a JSON value too large for the slot is refused and nothing changes", () => {
    image.run(["fim-env", "set", "KEEP=1"]);
    // One argument is limited to 128 KiB by the kernel: nine of 120 KiB exceed the 1 MiB slot.
    const huge = Array.from({ length: 9 }, (_, i) => `BIG${i}=${"x".repeat(120 * 1024)}`);
    const result = image.run(["fim-env", "add", ...huge]);
    expect(result.code).toBe(125);
    expect(lines(result.stderr)).toEqual(["E::Not enough space to fit json data", "E::Failed to add variables", "C::The program exited with an error"]);
    expect(image.run(["fim-env", "list"]).stdout).toBe("KEEP=1\n");
  });

  test("20 concurrent adds lose no entry", async () => {
    image.run(["fim-env", "clear"]);
    // The kernel refuses to start a file while another process has it open for writing, which
    // a writer does for the microseconds of each write (README, process model): 20 starts
    // among 20 writers meet one now and then, and are started again. What is tested is that
    // no write loses another's entry.
    const start = (argv: string[]): ReturnType<typeof Bun.spawn> => {
      for (let tries = 0; ; tries++) {
        try {
          return Bun.spawn(argv, { stdout: "pipe", stderr: "pipe" });
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "ETXTBSY" || tries === 100) throw error;
          Bun.sleepSync(1);
        }
      }
    };
    const processes = Array.from({ length: 20 }, (_, i) => start([image.path, "fim-env", "add", `VAR_${String(i).padStart(2, "0")}=value ${i}`]));
    const codes = await Promise.all(processes.map((p) => p.exited));
    const errors = await Promise.all(processes.map((p) => new Response(p.stderr as ReadableStream).text()));
    expect(errors.filter((e) => e !== "")).toEqual([]);
    expect(codes).toEqual(Array(20).fill(0));
    const expected = Array.from({ length: 20 }, (_, i) => `VAR_${String(i).padStart(2, "0")}=value ${i}\n`).join("");
    expect(image.run(["fim-env", "list"]).stdout).toBe(expected);
  });
});
