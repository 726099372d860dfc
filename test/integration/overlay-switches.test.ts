import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());


function reservedByte(offset: number): number {
  const rsv = Number(image.run([], { env: { FIM_MAIN_OFFSET: "1" } }).stdout.trim());
  return readFileSync(image.path)[rsv + offset]!;
}

describe("fim-overlay", () => {
  test("fresh image shows BWRAP; set stores upstream's byte; FIM_OVERLAY overrides", () => {
    expect(image.run(["fim-overlay", "show"]).stdout).toBe("BWRAP\n");
    expect(image.run(["fim-overlay", "set", "OverlayFS"]).code).toBe(0);
    expect(reservedByte(9)).toBe(0x04);
    expect(image.run(["fim-overlay", "show"]).stdout).toBe("OVERLAYFS\n");
    expect(image.run(["fim-overlay", "set", "unionfs"]).code).toBe(0);
    expect(reservedByte(9)).toBe(0x08);
    expect(image.run(["fim-overlay", "show"], { env: { FIM_OVERLAY: "bwrap" } }).stdout).toBe("BWRAP\n");
    expect(image.run(["fim-overlay", "show"], { env: { FIM_OVERLAY: "BWRAP" } }).stdout).toBe("UNIONFS\n");
    expect(image.run(["fim-overlay", "set", "bwrap"]).code).toBe(0);
    expect(reservedByte(9)).toBe(0x02);
  });

  test("casefold forces UNIONFS over BWRAP, with a warning", () => {
    const shown = image.run(["fim-overlay", "show"], { env: { FIM_CASEFOLD: "1" } });
    expect(shown.stdout).toBe("UNIONFS\n");
    expect(lines(shown.stderr)).toEqual(["W::casefold cannot be used with bwrap overlayfs, falling back to unionfs"]);
  });

  test("errors", () => {
    expectParseError(image, ["fim-overlay"], "Missing op for 'fim-overlay' (<set|show>)");
    expectParseError(image, ["fim-overlay", "foo"], "Invalid overlay operation 'foo' (one of: set, show)");
    expectParseError(image, ["fim-overlay", "none"], "Invalid operation for fim-overlay");
    expectParseError(image, ["fim-overlay", "set"], "Missing argument for 'set'");
    expectParseError(image, ["fim-overlay", "set", "zfs"], "Invalid overlay type 'zfs' (one of: bwrap, overlayfs, unionfs)");
    expectParseError(image, ["fim-overlay", "set", "bwrap", "x"], "Trailing arguments for fim-overlay: ['x',]");
    const none = image.run(["fim-overlay", "set", "none"]);
    expect(none.code).toBe(125);
    expect(lines(none.stderr)).toEqual(["E::Invalid overlay option", "E::Failed to set overlay type", "C::The program exited with an error"]);
  });
});

describe("fim-casefold and fim-notify", () => {
  test("on/off write the byte; none means off", () => {
    expect(image.run(["fim-casefold", "on"]).code).toBe(0);
    expect(reservedByte(10)).toBe(1);
    expect(image.run(["fim-overlay", "show"]).stdout).toBe("UNIONFS\n");
    expect(image.run(["fim-casefold", "OFF"]).code).toBe(0);
    expect(reservedByte(10)).toBe(0);
    expect(image.run(["fim-notify", "on"]).code).toBe(0);
    expect(reservedByte(8)).toBe(1);
    expect(image.run(["fim-notify", "none"]).code).toBe(0);
    expect(reservedByte(8)).toBe(0);
  });

  test("errors", () => {
    expectParseError(image, ["fim-casefold"], "Incorrect number of arguments for 'fim-casefold' (<on|off>)");
    expectParseError(image, ["fim-casefold", "maybe"], "Invalid casefold switch 'maybe' (one of: on, off)");
    expectParseError(image, ["fim-casefold", "on", "x"], "Trailing arguments for fim-casefold: ['x',]");
    expectParseError(image, ["fim-notify"], "Incorrect number of arguments for 'fim-notify' (<on|off>)");
    expectParseError(image, ["fim-notify", "on", "x"], "Incorrect number of arguments for 'fim-notify' (<on|off>)");
    expectParseError(image, ["fim-notify", "maybe"], "Invalid notify switch 'maybe' (one of: on, off)");
  });
});
