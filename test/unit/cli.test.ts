import { describe, expect, test } from "bun:test";
import { parseSwitch, parseWord, renderArgs, splitRange, splitStream } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { dumpJson } from "../../core/json.ts";

describe("argument helpers", () => {
  test("renderArgs", () => {
    expect(renderArgs(["a", "b"])).toBe("['a','b',]");
    expect(renderArgs([])).toBe("[]");
  });

  test("comma splitting, both flavours", () => {
    expect(splitStream("a,,b")).toEqual(["a", "", "b"]);
    expect(splitStream("a,")).toEqual(["a"]);
    expect(splitStream("")).toEqual([]);
    expect(splitRange("a,,b")).toEqual(["a", "", "b"]);
    expect(splitRange("a,")).toEqual(["a", ""]);
    expect(splitRange("")).toEqual([]);
  });

  test("enum words are case-insensitive; none is hidden; unknown words chain two messages", () => {
    expect(parseWord("AdD", ["add", "del"] as const, "bad")).toBe("add");
    expect(parseWord("NoNe", ["add"] as const, "bad")).toBe("NONE");
    try {
      parseWord("zap", ["add"] as const, "Invalid thing");
      throw new Error("not thrown");
    } catch (error) {
      expect((error as FimError).chain).toEqual([
        { level: "D", message: "Could not determine enum entry from 'ZAP'", tag: "fim" },
        { level: "C", message: "Invalid thing", tag: "fim" },
      ]);
    }
    expect(parseSwitch("ON", "x")).toBe(true);
    expect(parseSwitch("none", "x")).toBe(false);
  });

  test("JSON like nlohmann dump(2): sorted keys at every depth", () => {
    expect(dumpJson({ b: 1, a: { d: [], c: {} }, "10": 0, "2": 0, é: "ü\n" })).toBe(
      '{\n  "10": 0,\n  "2": 0,\n  "a": {\n    "c": {},\n    "d": []\n  },\n  "b": 1,\n  "é": "ü\\n"\n}',
    );
  });
});
