// The seccomp filter loaded for real: the tool set's bwrap reads it from a descriptor
// (`--seccomp 9`), and a small C probe makes the calls the filter decides on, each compared
// with the same call without the filter (so a refusal is the filter's, not the kernel's).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
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
    const result = Bun.spawnSync([...args, "--", ...command], { stdio: stdio as never, env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LANG: "C" } });
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

  test("a sandbox inside the guest works (bwrap mounts, chroot) only when allowed", () => {
    const nested = [bwrap, "--unshare-user", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--", "sh", "-c", "echo nested; ls /proc/self/ns/user >/dev/null"];
    expect(sandboxed(nested, { ...defaults, allowUserNamespaces: true })).toEqual({ code: 0, stdout: "nested\n", stderr: "" });
    expect(sandboxed(["unshare", "-U", "--map-root-user", "chroot", "/", "true"], { ...defaults, allowUserNamespaces: true })).toEqual({ code: 0, stdout: "", stderr: "" });
    // bwrap reads the EPERM of its clone as user namespaces being disabled.
    const refused = sandboxed(nested, defaults);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain("bwrap: No permissions to create a new namespace");
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

  test("switching to another user or group returns 0 and the process stays root", () => {
    const calls = ["setgroups", "setresgid", "setresuid", "ids"];
    expect(probed(calls, undefined, asRoot)).toEqual({ setgroups: "EPERM", setresgid: "EINVAL", setresuid: "EINVAL", ids: "0:0" });
    expect(probed(calls, { ...defaults, fakeOwnership: true }, asRoot)).toEqual({ setgroups: "ok", setresgid: "ok", setresuid: "ok", ids: "0:0" });
    const su = sandboxed(["setpriv", "--reuid=4242", "--regid=4242", "--clear-groups", "id", "-u"], { ...defaults, fakeOwnership: true }, asRoot);
    expect(su).toEqual({ code: 0, stdout: "0\n", stderr: "" });
  });

  test("dpkg installs a package whose files belong to other users (issue 16's failure)", () => {
    for (const tool of ["dpkg", "ar", "tar"]) if (!Bun.which(tool, { PATH: "/usr/sbin:/usr/bin:/sbin:/bin" })) throw new Error(`${tool} is missing: install it (as root: apt-get install dpkg binutils tar)`);
    const work = join(dir, "dpkg");
    const sh = (script: string) => {
      const result = Bun.spawnSync(["sh", "-ec", script], { cwd: work, stderr: "pipe" });
      if (result.exitCode !== 0) throw new Error(`making the package failed: ${result.stderr.toString()}`);
    };
    mkdirSync(join(work, "data/usr/share/fim-owned"), { recursive: true });
    mkdirSync(join(work, "control"));
    writeFileSync(join(work, "data/usr/share/fim-owned/file"), "owned\n");
    writeFileSync(join(work, "control/control"), "Package: fim-owned\nVersion: 1.0\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: files owned by others\n");
    // What a .deb is: an ar archive of the format version, the control files and the data.
    sh("tar --owner=4242 --group=4243 -C data -czf data.tar.gz ./usr && tar --owner=0 --group=0 -C control -czf control.tar.gz ./control && echo 2.0 > debian-binary && ar rc fim-owned.deb debian-binary control.tar.gz data.tar.gz");
    const install = (options?: SeccompOptions) => {
      rmSync(join(work, "admin"), { recursive: true, force: true });
      rmSync(join(work, "root"), { recursive: true, force: true });
      for (const sub of ["admin/updates", "admin/info", "admin/triggers", "root"]) mkdirSync(join(work, sub), { recursive: true });
      writeFileSync(join(work, "admin/status"), "");
      const dpkg = ["env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "dpkg", `--admindir=${work}/admin`, `--instdir=${work}/root`, "--log=/dev/null", "-i", `${work}/fim-owned.deb`];
      return sandboxed(dpkg, options, asRoot);
    };
    const refused = install(defaults);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("error setting ownership of");
    expect(refused.stderr).toContain("Invalid argument");
    const installed = install({ ...defaults, fakeOwnership: true });
    expect(installed).toMatchObject({ code: 0, stderr: "" });
    expect(installed.stdout).toContain("Setting up fim-owned (1.0) ...");
    const file = statSync(join(work, "root/usr/share/fim-owned/file"));
    expect([file.uid, file.gid]).toEqual([process.getuid!(), process.getgid!()]);
    expect(readFileSync(join(work, "root/usr/share/fim-owned/file"), "utf8")).toBe("owned\n");
  });

  test("chown(1) and install(1) as root succeed", () => {
    const file = join(dir, "installed");
    const result = sandboxed(["sh", "-c", `chown 4242:4242 ${dir}/owned && install -o 4242 -g 4242 -m 644 /dev/null ${file} && echo done`], { ...defaults, fakeOwnership: true }, asRoot);
    expect(result).toEqual({ code: 0, stdout: "done\n", stderr: "" });
    expect(statSync(file).uid).toBe(process.getuid!());
  });
});
