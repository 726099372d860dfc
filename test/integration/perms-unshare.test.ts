import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { expectExecError, expectParseError, freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const ALL_PERMS = "audio dbus_system dbus_user dev gpu home input media network optical shm udev usb wayland xorg".split(" ");



describe("fim-perms", () => {
  test("fresh image lists nothing", () => {
    const result = image.run(["fim-perms", "list"]);
    expect(result).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("add, list sorted, del, set, clear", () => {
    expect(image.run(["fim-perms", "add", "network,home"]).code).toBe(0);
    expect(image.run(["fim-perms", "ADD", "Audio"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("audio\nhome\nnetwork\n");
    expect(image.run(["fim-perms", "del", "home"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("audio\nnetwork\n");
    expect(image.run(["fim-perms", "set", "gpu,wayland"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("gpu\nwayland\n");
    expect(image.run(["fim-perms", "clear"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("");
  });

  test("all sets every permission; del all clears them (upstream enabled them)", () => {
    expect(image.run(["fim-perms", "add", "all"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe(ALL_PERMS.map((p) => `${p}\n`).join(""));
    expect(image.run(["fim-perms", "del", "all"]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("");
  });

  test("empty lists: set '' clears, add '' keeps", () => {
    image.run(["fim-perms", "set", "home"]);
    expect(image.run(["fim-perms", "add", ""]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("home\n");
    expect(image.run(["fim-perms", "set", ""]).code).toBe(0);
    expect(image.run(["fim-perms", "list"]).stdout).toBe("");
  });

  test("the bit-field is byte-compatible with upstream (home=bit0 … optical=bit14)", () => {
    image.run(["fim-perms", "set", "home,optical"]);
    const offset = Number(image.run([], { env: { FIM_MAIN_OFFSET: "" } }).stdout.trim());
    const bytes = Buffer.from(require("node:fs").readFileSync(image.path)).subarray(offset, offset + 8);
    expect(bytes.readBigUInt64LE(0)).toBe((1n << 0n) | (1n << 14n));
    image.run(["fim-perms", "clear"]);
  });

  test("parse errors", () => {
    expectParseError(image, ["fim-perms"], "Missing op for fim-perms (add,del,list,set,clear)");
    expectParseError(image, ["fim-perms", "foo"], "Invalid perms operation 'foo' (one of: add, del, set, list, clear)");
    expectParseError(image, ["fim-perms", "none"], "Invalid operation for permissions");
    expectParseError(image, ["fim-perms", "add"], "No arguments for 'ADD' command");
    expectParseError(image, ["fim-perms", "del"], "No arguments for 'DEL' command");
    expectParseError(image, ["fim-perms", "set"], "No arguments for 'SET' command");
    expectParseError(image, ["fim-perms", "add", "home,bogus"], "Invalid permission 'bogus' (one of: home, media, audio, wayland, xorg, dbus_user, dbus_system, udev, usb, input, gpu, network, dev, shm, optical, all)", "Failed to process permissions");
    expectParseError(image, ["fim-perms", "add", "home", "world"], "Trailing arguments for fim-perms: ['world',]");
    expectParseError(image, ["fim-perms", "list", "a", "b"], "Trailing arguments for fim-perms: ['a','b',]");
  });

  test("debug mode shows the enum line", () => {
    const result = image.run(["fim-perms", "foo"], { env: { FIM_DEBUG: "1" } });
    expect(lines(result.stdout)).toContain("D::Could not determine enum entry from 'FOO'");
  });

  test("execution errors", () => {
    expectExecError(image, ["fim-perms", "add", "home,none"], "Invalid permission 'NONE'", "Failed to add permissions");
    expectExecError(image, ["fim-perms", "del", "none"], "Invalid permission 'NONE'", "Failed to delete permissions");
    expectExecError(image, ["fim-perms", "set", "all,home"], "Permission 'all' should not be used with others", "Failed to set permissions");
  });
});

describe("fim-unshare", () => {
  test("round trip and sorted list", () => {
    expect(image.run(["fim-unshare", "add", "pid,ipc"]).code).toBe(0);
    expect(image.run(["fim-unshare", "list"]).stdout).toBe("ipc\npid\n");
    expect(image.run(["fim-unshare", "set", "all"]).code).toBe(0);
    expect(image.run(["fim-unshare", "list"]).stdout).toBe("cgroup\nipc\nnet\npid\nuser\nuts\n");
    expect(image.run(["fim-unshare", "del", "net,uts"]).code).toBe(0);
    expect(image.run(["fim-unshare", "list"]).stdout).toBe("cgroup\nipc\npid\nuser\n");
    expect(image.run(["fim-unshare", "clear"]).code).toBe(0);
    expect(image.run(["fim-unshare", "list"]).stdout).toBe("");
  });

  test("errors", () => {
    expectParseError(image, ["fim-unshare"], "Missing op for fim-unshare (add,clear,del,list,set)");
    expectParseError(image, ["fim-unshare", "bar"], "Invalid unshare operation 'bar' (one of: add, del, set, list, clear)");
    expectParseError(image, ["fim-unshare", "none"], "Invalid operation for unshare");
    expectParseError(image, ["fim-unshare", "add"], "No arguments for 'ADD' command");
    expectParseError(image, ["fim-unshare", "add", "pid,mnt"], "Invalid unshare option 'mnt' (one of: user, ipc, pid, net, uts, cgroup, all)", "Failed to process unshare options");
    expectParseError(image, ["fim-unshare", "clear", "x"], "Trailing arguments for fim-unshare: ['x',]");
    expectExecError(image, ["fim-unshare", "add", "none"], "Invalid unshare option 'NONE'", "Failed to add unshare options");
    expectExecError(image, ["fim-unshare", "add", "all,pid"], "Unshare option 'all' should not be used with others", "Failed to add unshare options");
  });
});
