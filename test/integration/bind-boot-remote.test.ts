import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());


describe("fim-bind", () => {
  test("add numbers bindings, list prints the stored JSON, del renumbers", () => {
    expect(image.run(["fim-bind", "list"])).toMatchObject({ code: 0, stdout: "" });
    expect(lines(image.run(["fim-bind", "add", "ro", "/src0", "/dst0"]).stdout)).toEqual(["I::Binding index is '0'"]);
    expect(lines(image.run(["fim-bind", "add", "RW", "$HOME/a", "/dst1"]).stdout)).toEqual(["I::Binding index is '1'"]);
    expect(lines(image.run(["fim-bind", "add", "dev", "/dev/dri", "/dev/dri"]).stdout)).toEqual(["I::Binding index is '2'"]);
    expect(image.run(["fim-bind", "list"]).stdout).toBe(
      `{\n  "0": {\n    "dst": "/dst0",\n    "src": "/src0",\n    "type": "ro"\n  },\n  "1": {\n    "dst": "/dst1",\n    "src": "$HOME/a",\n    "type": "rw"\n  },\n  "2": {\n    "dst": "/dev/dri",\n    "src": "/dev/dri",\n    "type": "dev"\n  }\n}\n`,
    );
    expect(lines(image.run(["fim-bind", "del", "0"]).stdout)).toEqual(["I::Erase element with index '0'"]);
    expect(lines(image.run(["fim-bind", "del", "7"]).stdout)).toEqual(["I::No element with index '7' found"]);
    const listed = JSON.parse(image.run(["fim-bind", "list"]).stdout);
    expect(listed).toEqual({ "0": { dst: "/dst1", src: "$HOME/a", type: "rw" }, "1": { dst: "/dev/dri", src: "/dev/dri", type: "dev" } });
    image.run(["fim-bind", "del", "0"]);
    image.run(["fim-bind", "del", "0"]);
    expect(image.run(["fim-bind", "list"]).stdout).toBe("");
  });

  test("renumbering keeps numeric order past ten bindings", () => {
    for (let i = 0; i < 12; i++) image.run(["fim-bind", "add", "ro", `/s${i}`, `/d${i}`]);
    image.run(["fim-bind", "del", "1"]);
    const listed = JSON.parse(image.run(["fim-bind", "list"]).stdout) as Record<string, { src: string }>;
    const order = Object.keys(listed).sort((a, b) => Number(a) - Number(b)).map((k) => listed[k]!.src);
    expect(order).toEqual(["/s0", "/s2", "/s3", "/s4", "/s5", "/s6", "/s7", "/s8", "/s9", "/s10", "/s11"]);
    for (let i = 0; i < 11; i++) image.run(["fim-bind", "del", "0"]);
  });

  test("errors", () => {
    expectParseError(image, ["fim-bind"], "Missing op for 'fim-bind' command (add,del,list)");
    expectParseError(image, ["fim-bind", "foo"], "Invalid bind operation 'foo' (one of: add, del, list)");
    expectParseError(image, ["fim-bind", "none"], "Invalid operation for bind");
    expectParseError(image, ["fim-bind", "add", "ro", "/a"], "Incorrect number of arguments for 'add' (<ro,rw,dev> <src> <dst>)");
    expectParseError(image, ["fim-bind", "add", "ro", "/a", "/b", "/c"], "Incorrect number of arguments for 'add' (<ro,rw,dev> <src> <dst>)");
    expectParseError(image, ["fim-bind", "add", "xx", "/a", "/b"], "Invalid bind type 'xx' (one of: ro, rw, dev)");
    expectParseError(image, ["fim-bind", "add", "none", "/a", "/b"], "Invalid bind type");
    expectParseError(image, ["fim-bind", "del"], "Incorrect number of arguments for 'del' (<index>)");
    expectParseError(image, ["fim-bind", "del", "1", "2"], "Incorrect number of arguments for 'del' (<index>)");
    expectParseError(image, ["fim-bind", "del", "-1"], "Index argument for 'del' is not a number");
    expectParseError(image, ["fim-bind", "del", "99999999999999999999999"], "Invalid index");
    expectParseError(image, ["fim-bind", "list", "x"], "'list' command takes no arguments");
  });
});

describe("fim-boot", () => {
  test("show defaults to bash; set stores program and args verbatim; clear", () => {
    expect(image.run(["fim-boot", "show"]).stdout).toBe('{\n  "args": [],\n  "program": "bash"\n}\n');
    expect(image.run(["fim-boot", "set", "echo", "hello world", "$HOME"])).toMatchObject({ code: 0, stdout: "", stderr: "" });
    expect(image.run(["fim-boot", "show"]).stdout).toBe('{\n  "args": [\n    "hello world",\n    "$HOME"\n  ],\n  "program": "echo"\n}\n');
    expect(image.run(["fim-boot", "clear"]).code).toBe(0);
    expect(image.run(["fim-boot", "show"]).stdout).toBe('{\n  "args": [],\n  "program": "bash"\n}\n');
  });

  test("errors", () => {
    expectParseError(image, ["fim-boot"], "Missing op for 'fim-boot' (<set|show|clear>)");
    expectParseError(image, ["fim-boot", "foo"], "Invalid boot operation 'foo' (one of: set, show, clear)");
    expectParseError(image, ["fim-boot", "none"], "Invalid boot operation");
    expectParseError(image, ["fim-boot", "set"], "Missing program for 'set' operation");
    expectParseError(image, ["fim-boot", "show", "x"], "Trailing arguments for fim-boot: ['x',]");
    expectParseError(image, ["fim-boot", "clear", "x"], "Trailing arguments for fim-boot: ['x',]");
  });
});

describe("fim-remote", () => {
  test("set, show, clear", () => {
    const set = image.run(["fim-remote", "set", "https://recipes.example.com/repo"]);
    expect(set.code).toBe(0);
    expect(lines(set.stdout)).toEqual(["I::Set remote URL to 'https://recipes.example.com/repo'"]);
    expect(image.run(["fim-remote", "show"]).stdout).toBe("https://recipes.example.com/repo\n");
    expect(lines(image.run(["fim-remote", "clear"]).stdout)).toEqual(["I::Cleared remote URL"]);
    const show = image.run(["fim-remote", "show"]);
    expect(show.code).toBe(125);
    expect(lines(show.stderr)).toEqual(["E::No remote URL configured", "E::Failed to get remote URL", "C::The program exited with an error"]);
  });

  test("errors", () => {
    expectParseError(image, ["fim-remote"], "Missing op for 'fim-remote' (<set|show|clear>)");
    expectParseError(image, ["fim-remote", "foo"], "Invalid remote operation 'foo' (one of: set, show, clear)");
    expectParseError(image, ["fim-remote", "none"], "Invalid remote operation");
    expectParseError(image, ["fim-remote", "set"], "Missing URL for 'set' operation");
    expectParseError(image, ["fim-remote", "set", "http://a", "b"], "Trailing arguments for fim-remote: ['b',]");
    expectParseError(image, ["fim-remote", "show", "b"], "Trailing arguments for fim-remote: ['b',]");
    const bad = image.run(["fim-remote", "set", "ftp://example.com"]);
    expect(bad.code).toBe(125);
    expect(lines(bad.stderr)[0]).toStartWith("C::Invalid remote URL 'ftp://example.com'");
    const long = image.run(["fim-remote", "set", `https://example.com/${"a".repeat(5000)}`]);
    expect(lines(long.stderr)).toEqual(["E::Not enough space to fit remote URL", "E::Failed to set remote URL", "C::The program exited with an error"]);
  });
});
