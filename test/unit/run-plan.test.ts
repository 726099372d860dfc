// A run's plan at the level of its hooks: facts, each plugin's operations, registries.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SandboxOp } from "../../core/launch.ts";
import type { Plugin } from "../../core/plugin.ts";
import { permissionMapper } from "../../plugins/perms/index.ts";
import { registerOverlayType } from "../../plugins/overlay/index.ts";
import { renderBwrap } from "../../plugins/sandbox/render.ts";
import commonBundle from "../../bundles/blueprint/index.ts";
import { memoryRuntime } from "../helpers/runtime.ts";

const binds = (operations: SandboxOp[]) => operations.flatMap((op) => (op.op === "bind" ? [op.dest] : []));

describe("run plan", () => {
  test("a $(…) in a stored variable runs once per run, and identity reads the same value", async () => {
    const counter = join(mkdtempSync(join(tmpdir(), "fim-count-")), "count");
    const memory = await memoryRuntime();
    await memory.command("fim-env", "add", `UID=$(echo run >> ${counter}; echo 4242)`);
    const { launch } = await memory.plan();
    expect(readFileSync(counter, "utf8")).toBe("run\n");
    expect(launch.facts.environment.UID).toBe("4242");
    expect(launch.identity.uid).toBe(4242);
  });

  test("the default sandbox: private /tmp, no host root view, network namespace, the runtime's files read-only", async () => {
    const memory = await memoryRuntime();
    const { operations } = await memory.plan();
    expect(operations).toContainEqual({ op: "tmpfs", dest: "/tmp" });
    expect(operations).toContainEqual({ op: "unshare", namespace: "net" });
    expect(binds(operations)).not.toContain("/tmp");
    expect(binds(operations).some((dest) => dest.startsWith("/tmp/fim/run/host"))).toBe(false);
    expect(operations).toContainEqual({ op: "bind", mode: "ro", source: memory.runtime.paths.bin, dest: memory.runtime.paths.bin });
    expect(operations.filter((op) => op.op === "bind" && op.mode !== "ro").map((op) => op.op === "bind" && op.dest)).toEqual(["/"]);
  });

  test("each granted permission adds its operations, in the reference's order; network lifts the namespace", async () => {
    const memory = await memoryRuntime();
    await memory.command("fim-perms", "add", "network,media,dev");
    const { operations } = await memory.plan();
    expect(operations).not.toContainEqual({ op: "unshare", namespace: "net" });
    const dests = binds(operations);
    expect(dests).toContain("/etc/resolv.conf");
    expect(dests.indexOf("/media")).toBeLessThan(dests.indexOf("/etc/resolv.conf"));
    expect(dests.at(-1)).toBe("/dev"); // dev is last: it supersedes the other device binds
  });

  test("unshare options and stored bindings become typed operations", async () => {
    const memory = await memoryRuntime();
    await memory.command("fim-unshare", "add", "ipc,uts");
    await memory.command("fim-bind", "add", "ro", "/etc/hostname", "/host-name");
    const { operations } = await memory.plan();
    expect(operations).toContainEqual({ op: "unshare", namespace: "ipc" });
    expect(operations).toContainEqual({ op: "unshare", namespace: "uts" });
    expect(operations).toContainEqual({ op: "bind", mode: "ro", source: "/etc/hostname", dest: "/host-name", optional: true });
  });

  test("identity: fim-root is uid 0 and keeps the image's passwd; a stored USER cannot add passwd lines", async () => {
    const memory = await memoryRuntime();
    await memory.command("fim-env", "add", "USER=evil\nroot2:x:0:0::/:/bin/sh", "PS1=\"; touch /tmp/pwned; \"'");
    const { launch, operations } = await memory.plan();
    const passwd = readFileSync(`${memory.runtime.paths.instance}/guest/passwd`, "utf8");
    expect(passwd.split("\n").filter(Boolean)).toHaveLength(1);
    expect(passwd).not.toContain("root2");
    expect(readFileSync(`${memory.runtime.paths.instance}/guest/bashrc`, "utf8")).toBe(`export PS1='"; touch /tmp/pwned; "'\\'''`);
    expect(operations).toContainEqual({ op: "identity", uid: launch.identity.uid, gid: launch.identity.gid });
    const root = await memory.plan({ root: true });
    expect(root.launch.identity.uid).toBe(0);
    expect(binds(root.operations)).not.toContain("/etc/passwd");
  });

  test("the overlay type: stored byte, FIM_OVERLAY, casefold's fall-back from BWRAP", async () => {
    const memory = await memoryRuntime();
    expect((await memory.plan()).launch.facts.overlay).toBe("BWRAP");
    await memory.command("fim-overlay", "set", "overlayfs");
    expect((await memory.plan()).launch.facts.overlay).toBe("OVERLAYFS");
    await memory.command("fim-overlay", "set", "bwrap");
    await memory.command("fim-casefold", "on");
    const { launch } = await memory.plan();
    expect(launch.facts.casefold).toBe(true);
    expect(launch.facts.overlay).toBe("UNIONFS");
  });

  test("a third-party permission and overlay type register themselves; collisions are refused at start-up", async () => {
    const camera = permissionMapper({ name: "camera", bit: 20, order: 20 }, () => [{ op: "bind", mode: "dev", source: "/dev/video0", dest: "/dev/video0", optional: true }]);
    const tmpRoot: Plugin = {
      name: "overlay-tmp",
      requires: ["overlay"],
      apply: (runtime) => registerOverlayType(runtime, "overlay-tmp", { type: "TMPROOT", byte: 0x10, summary: "A root in memory" }, async () => ({ kind: "directory", path: "/nowhere" })),
    };
    const memory = await memoryRuntime({ plugins: [...commonBundle.plugins, camera, tmpRoot] });
    await memory.command("fim-perms", "add", "camera");
    await memory.command("fim-overlay", "set", "tmproot");
    const { launch, operations } = await memory.plan();
    expect(launch.facts.permissions.has("camera")).toBe(true);
    expect(binds(operations)).toContain("/dev/video0");
    expect(launch.facts.overlay).toBe("TMPROOT");

    const twin = permissionMapper({ name: "camera2", bit: 4, order: 0 }, () => []);
    expect(memoryRuntime({ plugins: [...commonBundle.plugins, twin] })).rejects.toThrow("bit 4, which 'xorg' already uses");
  });

  test("a plugin whose required plugin is missing fails at start-up with a message", async () => {
    const withoutOverlay = commonBundle.plugins.filter((plugin) => plugin.name !== "overlay");
    expect(memoryRuntime({ plugins: withoutOverlay })).rejects.toThrow("requires 'overlay'");
  });
});

describe("rendering to bwrap", () => {
  test("one function renders every operation; descriptors for data files; unshare once", () => {
    const lines: string[] = [];
    const { args, open } = renderBwrap(
      [
        { op: "overlay", lowers: ["/l0", "/l1"], upper: "/u", work: "/w", dest: "/" },
        { op: "bind", mode: "ro", source: "/a", dest: "/b", optional: true },
        { op: "bind", mode: "dev", source: "/dev/dri", dest: "/dev/dri" },
        { op: "file", source: "/host/passwd", dest: "/etc/passwd" },
        { op: "tmpfs", dest: "/tmp" },
        { op: "unshare", namespace: "net" },
        { op: "unshare", namespace: "net" },
        { op: "identity", uid: 1000, gid: 1000 },
        { op: "seccomp", program: "/filter.bpf" },
        { op: "setenv", name: "A", value: "1 2" },
        { op: "symlink", target: "usr/bin", dest: "/bin" },
      ],
      (line) => lines.push(line),
    );
    expect(args).toEqual([
      "--overlay-src", "/l0", "--overlay-src", "/l1", "--overlay", "/u", "/w", "/",
      "--ro-bind-try", "/a", "/b",
      "--dev-bind", "/dev/dri", "/dev/dri",
      "--ro-bind-data", "10", "/etc/passwd",
      "--tmpfs", "/tmp",
      "--unshare-net",
      "--unshare-user", "--uid", "1000", "--gid", "1000",
      "--seccomp", "11",
      "--setenv", "A", "1 2",
      "--symlink", "usr/bin", "/bin",
    ]);
    expect(open).toEqual([[10, "/host/passwd"], [11, "/filter.bpf"]]);
    expect(lines).toHaveLength(11);
    expect(lines[6]).toBe("unshare: (already unshared)");
  });
});
