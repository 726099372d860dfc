// The seccomp filter loaded for real: the tool set's bwrap reads it from a descriptor
// (`--seccomp 9`), and a small C probe makes the calls the filter decides on, each compared
// with the same call without the filter (so a refusal is the filter's, not the kernel's).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdtempSync, openSync, closeSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { seccompArch, seccompProgram, type SeccompOptions } from "../../plugins/seccomp/filter.ts";
import { ROOT } from "../helpers/image.ts";

const arch = seccompArch();
const bwrap = join(ROOT, `toolset/out/${arch}/bin/bwrap`);
let dir: string;
let probe: string;

beforeAll(() => {
  if (!existsSync(bwrap)) throw new Error(`${bwrap} is missing: build the tool set (toolset/build.sh)`);
  const gcc = Bun.which("gcc");
  if (!gcc) throw new Error("gcc is missing: install it (as root: apt-get install gcc libc6-dev)");
  dir = mkdtempSync(join(tmpdir(), "fim-seccomp-"));
  chmodSync(dir, 0o755);
  probe = join(dir, "probe");
  const compiled = Bun.spawnSync([gcc, "-O2", "-Wall", "-o", probe, join(ROOT, "test/fixtures/seccomp-probe.c")], { stderr: "pipe" });
  if (compiled.exitCode !== 0) throw new Error(`compiling the probe failed: ${compiled.stderr.toString()}`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const defaults: SeccompOptions = { arch, allowUserNamespaces: false, fakeOwnership: false };

/** Runs `command` in bwrap (host root, own user namespace), with the filter when options are given. */
function sandboxed(command: string[], options?: SeccompOptions, bwrapArgs: string[] = []) {
  const stdio: (number | "ignore" | "pipe")[] = ["ignore", "pipe", "pipe"];
  const args = [bwrap, "--unshare-user", ...bwrapArgs, "--dev-bind", "/", "/"];
  let fd: number | undefined;
  if (options) {
    const file = join(dir, `filter-${options.allowUserNamespaces}-${options.fakeOwnership}.bpf`);
    writeFileSync(file, seccompProgram(options));
    fd = openSync(file, "r");
    while (stdio.length < 9) stdio.push("ignore");
    stdio.push(fd);
    args.push("--seccomp", "9");
  }
  try {
    const result = Bun.spawnSync([...args, "--", ...command], { stdio: stdio as never, env: { PATH: "/usr/bin:/bin", LANG: "C" } });
    return { code: result.exitCode, stdout: result.stdout!.toString(), stderr: result.stderr!.toString() };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The probe's results as a map, e.g. { keyctl: "EPERM" }. */
function probed(probes: string[], options?: SeccompOptions, bwrapArgs: string[] = []): Record<string, string> {
  const result = sandboxed([probe, ...probes], options, bwrapArgs);
  expect(result.stderr).toBe("");
  expect(result.code).toBe(0);
  return Object.fromEntries(result.stdout.trim().split("\n").map((line) => line.split("=") as [string, string]));
}

describe("the default filter", () => {
  // unshare-user leaves the probe without a mapped uid, so it comes last.
  const probes = ["tiocsti", "tiocsti-high", "tioclinux", "tcgets", "keyctl", "clone3", "clone-user", "unshare-files", "fork", "socket-vsock", "socket-unix", "socket-inet", "personality-query", "personality-norandom", "ptrace", "io_uring", "x32-getpid", ...(arch === "x86_64" ? ["i386-getpid", "i386-keyctl"] : []), "unshare-user"];

  test("refuses what it should, with the errno it should, and only with the filter", () => {
    const without = probed(probes);
    const filtered = probed(probes, defaults);
    const refused = {
      tiocsti: "EPERM", // typing into the controlling terminal
      "tiocsti-high": "EPERM", // the same request with the high 32 bits set (the kernel ignores them)
      tioclinux: "EPERM",
      keyctl: "EPERM",
      clone3: "ENOSYS",
      "clone-user": "EPERM",
      "unshare-user": "EPERM",
      "socket-vsock": "EAFNOSUPPORT",
      "personality-norandom": "EPERM",
      ptrace: "EPERM",
      io_uring: "ENOSYS",
      ...(arch === "x86_64" ? { "i386-keyctl": "EPERM" } : {}),
    };
    for (const [name, errno] of Object.entries(refused)) expect([name, filtered[name]]).toEqual([name, errno]);
    // Without the filter these calls get through (TIOCLINUX only works on a virtual console).
    for (const name of Object.keys(refused)) if (name !== "tioclinux") expect([name, without[name]]).toEqual([name, name === "clone3" ? "EINVAL" : "ok"]);
    expect(without.tioclinux).toBe("ENOTTY");
    // What stays allowed.
    for (const name of ["tcgets", "unshare-files", "fork", "socket-unix", "socket-inet", "personality-query", ...(arch === "x86_64" ? ["i386-getpid"] : [])]) {
      expect([name, filtered[name]]).toEqual([name, "ok"]);
    }
    expect(filtered["x32-getpid"]).toBe("ENOSYS");
  });

  test("ordinary programs work: sh, ls, perl, a pipeline, a thread", () => {
    const result = sandboxed(["sh", "-c", 'ls / | grep -qx usr && perl -e \'print "perl ", 6 * 7, "\\n"\' && printf "%s\\n" sh | cat'], defaults);
    expect(result).toEqual({ code: 0, stdout: "perl 42\nsh\n", stderr: "" });
    // glibc creates threads with clone3 and falls back to clone on ENOSYS.
    const threads = sandboxed(["perl", "-Mthreads", "-e", 'print threads->create(sub { "thread\\n" })->join'], defaults);
    expect(threads).toEqual({ code: 0, stdout: "thread\n", stderr: "" });
  });

  test("unshare -U is refused", () => {
    const result = sandboxed(["unshare", "-U", "true"], defaults);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain("Operation not permitted");
    expect(sandboxed(["unshare", "-U", "true"]).code).toBe(0);
  });

  test("the kernel accepts the program for every combination of options", () => {
    for (const allowUserNamespaces of [false, true]) {
      for (const fakeOwnership of [false, true]) expect(sandboxed(["true"], { arch, allowUserNamespaces, fakeOwnership }).code).toBe(0);
    }
  });
});

describe("allowUserNamespaces", () => {
  test("nested user namespaces work; clone3 still says ENOSYS (glibc falls back to clone)", () => {
    const options = { ...defaults, allowUserNamespaces: true };
    expect(probed(["clone-user", "clone3", "keyctl", "tiocsti", "unshare-user"], options)).toEqual({ "clone-user": "ok", clone3: "ENOSYS", keyctl: "EPERM", tiocsti: "EPERM", "unshare-user": "ok" });
    expect(sandboxed(["unshare", "-U", "--map-root-user", "id", "-u"], options)).toEqual({ code: 0, stdout: "0\n", stderr: "" });
  });
});

describe("fakeOwnership", () => {
  // fim-root's mapping: the user is uid 0 inside, and no other id is mapped.
  const asRoot = ["--uid", "0", "--gid", "0"];

  test("the chown family returns 0 and changes nothing; without it chowning to another owner fails", () => {
    const file = join(dir, "owned");
    const link = join(dir, "owned-link");
    writeFileSync(file, "x");
    symlinkSync(file, link);
    const owner = statSync(file);
    const linkOwner = lstatSync(link);
    const calls = [`chown:${file}:4242:4242`, `fchown:${file}:4242:0`, `fchownat:${file}:0:4242`, `lchown:${link}:4242:4242`, `owner:${file}`];
    const without = probed(calls, undefined, asRoot);
    for (const call of ["chown", "fchown", "fchownat", "lchown"]) expect([call, without[call]]).toEqual([call, "EINVAL"]);
    const faked = probed(calls, { ...defaults, fakeOwnership: true }, asRoot);
    expect(faked).toEqual({ chown: "ok", fchown: "ok", fchownat: "ok", lchown: "ok", owner: "0:0" });
    expect([statSync(file).uid, statSync(file).gid]).toEqual([owner.uid, owner.gid]);
    expect([lstatSync(link).uid, lstatSync(link).gid]).toEqual([linkOwner.uid, linkOwner.gid]);
    // The default filter leaves ownership to the kernel.
    expect(probed([`chown:${file}:4242:4242`], defaults, asRoot)).toEqual({ chown: "EINVAL" });
  });

  test("chown(1) and install(1) as root succeed", () => {
    const file = join(dir, "installed");
    const result = sandboxed(["sh", "-c", `chown 4242:4242 ${dir}/owned && install -o 4242 -g 4242 -m 644 /dev/null ${file} && echo done`], { ...defaults, fakeOwnership: true }, asRoot);
    expect(result).toEqual({ code: 0, stdout: "done\n", stderr: "" });
    expect(statSync(file).uid).toBe(process.getuid!());
  });
});
