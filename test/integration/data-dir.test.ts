// The data directory: a per-user fall-back when the image lies where the user cannot write,
// and a refusal (exit 125, with what to do) when the directory is not the user's.
//
// The image runs as a regular user: this user, or 'fimtest' when the suite runs as root.
// Then the test itself plays the other user (root) where a scenario needs two: the run
// with sudo that leaves a root-owned data directory, a directory made by root in /opt.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureTestImage, lines, type RunResult } from "../helpers/image.ts";

const asRoot = process.getuid!() === 0;
const user = asRoot ? regularUser() : { uid: process.getuid!(), gid: process.getgid!(), name: process.env.USER ?? "" };
const made: string[] = [];
afterAll(() => {
  for (const dir of made) {
    Bun.spawnSync(["chmod", "-R", "u+rwx", dir], { stderr: "ignore" });
    rmSync(dir, { recursive: true, force: true });
  }
});

function regularUser(): { uid: number; gid: number; name: string } {
  const id = (flag: string) => Bun.spawnSync(["id", flag, "fimtest"], { stdout: "pipe", stderr: "pipe" });
  const uid = id("-u");
  if (uid.exitCode !== 0) throw new Error("these tests run the image as the regular user 'fimtest' when run as root: create it with scripts/prepare.sh (as root)");
  return { uid: Number(uid.stdout.toString()), gid: Number(id("-g").stdout.toString()), name: "fimtest" };
}

/** A directory owned by the regular user. */
function userDir(mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), "fim-data-dir-"));
  made.push(dir);
  if (asRoot) chownSync(dir, user.uid, user.gid);
  chmodSync(dir, mode);
  return dir;
}

/** A copy of the test image at `dir/name`, owned by the regular user. */
function imageIn(dir: string, name = "app.flatimage"): string {
  const path = join(dir, name);
  copyFileSync(ensureTestImage(), path);
  if (asRoot) chownSync(path, user.uid, user.gid);
  chmodSync(path, 0o755);
  return path;
}

/** Runs the image as the regular user with a clean environment (and `umask`, if given). */
function runAsUser(image: string, args: string[], env: Record<string, string> = {}, umask?: string): RunResult {
  const vars = Object.entries({ PATH: "/usr/local/bin:/usr/bin:/bin", USER: user.name, HOME: "/nonexistent", ...env }).map(([k, v]) => `${k}=${v}`);
  const command = umask === undefined ? [image, ...args] : ["sh", "-c", `umask ${umask}; exec "$@"`, "sh", image, ...args];
  const argv = asRoot ? ["runuser", "-u", "fimtest", "--", "env", "-i", ...vars, ...command] : ["env", "-i", ...vars, ...command];
  const result = Bun.spawnSync(argv, { cwd: "/", stdout: "pipe", stderr: "pipe" });
  return { code: result.exitCode ?? 128, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

/** Runs the image as root (the test is root in the root pass). */
function runAsRoot(image: string, args: string[]): RunResult {
  const result = Bun.spawnSync([image, ...args], { cwd: "/", stdout: "pipe", stderr: "pipe", env: { ...process.env, HOME: "/root" } });
  return { code: result.exitCode ?? 128, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
}

const refused = (result: RunResult, message: string) => {
  expect(result.code).toBe(125);
  expect(lines(result.stderr)).toEqual([`C::${message}`, "C::The program exited with an error"]);
};

const mode = (path: string) => (statSync(path).mode & 0o7777).toString(8);

describe("an image in a read-only place", () => {
  let place: string;
  let image: string;
  let home: string;
  beforeAll(() => {
    // /opt-like: root's directory when the suite runs as root, else the user's own without write permission.
    place = mkdtempSync(join(tmpdir(), "fim-opt-"));
    made.push(place);
    image = imageIn(place);
    chmodSync(place, asRoot ? 0o755 : 0o555);
    home = userDir(0o700);
  });

  test("keeps its data in a per-user directory named after the image and its place, says where once, and keeps using it", () => {
    const first = runAsUser(image, ["fim-exec", "sh", "-c", "echo kept > /kept"], { HOME: home });
    expect(first.code).toBe(0);
    const notice = lines(first.stderr);
    expect(notice.length).toBe(1);
    const match = notice[0]!.match(/^W::The data directory cannot be beside the image \('(.*)' is not writable\): using '(.*)'$/);
    expect(match?.[1]).toBe(place);
    const data = match![2]!;
    expect(data).toMatch(new RegExp(`^${home}/\\.local/share/flatimage/app\\.flatimage-[0-9a-f]{16}\\.data$`));
    expect(statSync(data).uid).toBe(user.uid);
    for (const dir of [`${home}/.local`, `${home}/.local/share`, `${home}/.local/share/flatimage`, data]) expect(mode(dir)).toBe("700");
    expect(existsSync(join(place, ".app.flatimage.data"))).toBe(false);

    const again = runAsUser(image, ["fim-exec", "cat", "/kept"], { HOME: home });
    expect(again).toEqual({ code: 0, stdout: "kept\n", stderr: "" });
    // The guest is told where its data is, as upstream's FIM_DIR_DATA.
    expect(runAsUser(image, ["fim-exec", "sh", "-c", 'echo "$FIM_DIR_DATA"'], { HOME: home }).stdout).toBe(`${data}\n`);
  });

  test("another image of the same name elsewhere gets its own; $XDG_DATA_HOME is used when set", () => {
    const other = mkdtempSync(join(tmpdir(), "fim-opt-"));
    made.push(other);
    const twin = imageIn(other);
    chmodSync(other, asRoot ? 0o755 : 0o555);
    const xdg = userDir(0o700);
    const result = runAsUser(twin, ["fim-exec", "sh", "-c", "cat /kept 2>/dev/null || echo fresh"], { HOME: home, XDG_DATA_HOME: xdg });
    expect(result.stdout).toBe("fresh\n");
    expect(lines(result.stderr)[0]).toMatch(new RegExp(`using '${xdg}/flatimage/app\\.flatimage-[0-9a-f]{16}\\.data'$`));
  });

  test("a data directory beside it that is not the user's (e.g. from a run with sudo) does not block the user there", () => {
    const other = mkdtempSync(join(tmpdir(), "fim-opt-"));
    made.push(other);
    const copy = imageIn(other);
    if (asRoot) {
      chmodSync(other, 0o755);
      expect(runAsRoot(copy, ["fim-exec", "true"]).code).toBe(0); // `sudo /opt/app.flatimage`
      expect(statSync(join(other, ".app.flatimage.data")).uid).toBe(0);
    } else {
      symlinkSync("/usr/share", join(other, ".app.flatimage.data")); // a directory made by root
      chmodSync(other, 0o555);
    }
    const result = runAsUser(copy, ["fim-exec", "true"], { HOME: home });
    expect(result.code).toBe(0);
    expect(lines(result.stderr)).toEqual([
      expect.stringMatching(new RegExp(`^W::The data directory cannot be beside the image \\('${other}/\\.app\\.flatimage\\.data' is not yours and '${other}' is not writable\\): using '${home}/`)),
    ]);
  });

  test("a per-user tree directory that others can write is refused, and nothing is made in it", () => {
    const xdg = userDir(0o700);
    mkdirSync(join(xdg, "flatimage"));
    if (asRoot) chownSync(join(xdg, "flatimage"), user.uid, user.gid);
    chmodSync(join(xdg, "flatimage"), 0o777);
    const result = runAsUser(image, ["fim-exec", "true"], { HOME: home, XDG_DATA_HOME: xdg });
    refused(result, `The data directory '${xdg}/flatimage' is writable by other users (mode 0777): they could change what runs in your sandbox. Make it private: chmod go-w '${xdg}/flatimage'`);
    expect(readdirSync(join(xdg, "flatimage"))).toEqual([]);
  });
});

describe("a data directory that is not the user's is refused with what to do (exit 125)", () => {
  test("after a run with sudo: the root-owned data directory is named, with the command that gives it back", () => {
    const place = userDir();
    const image = imageIn(place);
    const data = join(place, ".app.flatimage.data");
    if (asRoot) {
      expect(runAsRoot(image, ["fim-exec", "true"]).code).toBe(0); // `sudo ./app.flatimage`
    } else {
      symlinkSync("/usr/share", data); // a directory made by root
    }
    const message = `The data directory '${data}' belongs to root, not to you (uid ${user.uid}): a run of the image with sudo probably made it. Give it back with: sudo chown -R ${user.uid}:${user.gid} '${data}' (or set FIM_DIR_DATA to a directory of yours that only you can write)`;
    refused(runAsUser(image, ["fim-exec", "true"]), message);
    if (asRoot) {
      // The fix it names works.
      expect(Bun.spawnSync(["chown", "-R", `${user.uid}:${user.gid}`, data]).exitCode).toBe(0);
      expect(runAsUser(image, ["fim-exec", "sh", "-c", "echo ok"])).toEqual({ code: 0, stdout: "ok\n", stderr: "" });
    }
  });

  if (asRoot) {
    test("one left by another user is refused to root too: what it holds would run in root's sandbox", () => {
      const place = userDir();
      const image = imageIn(place);
      expect(runAsUser(image, ["fim-exec", "true"]).code).toBe(0);
      const data = join(place, ".app.flatimage.data");
      refused(
        runAsRoot(image, ["fim-exec", "touch", "/by-root"]),
        `The data directory '${data}' belongs to fimtest (uid ${user.uid}), not to you (uid 0): what it holds would run in your sandbox. Have it removed, or set FIM_DIR_DATA to a directory of yours that only you can write`,
      );
      expect(existsSync(join(data, "root/by-root"))).toBe(false);
    });
  }

  test("one that others can write is refused, and nothing is made in it; a private group's write bit is fine", () => {
    const place = userDir();
    const image = imageIn(place);
    const data = join(place, ".app.flatimage.data");
    mkdirSync(data);
    if (asRoot) chownSync(data, user.uid, user.gid);
    chmodSync(data, 0o777);
    refused(runAsUser(image, ["fim-exec", "true"]), `The data directory '${data}' is writable by other users (mode 0777): they could change what runs in your sandbox. Make it private: chmod go-w '${data}'`);
    expect(readdirSync(data)).toEqual([]);
    chmodSync(data, 0o770); // the user's own group (fimtest:fimtest)
    expect(runAsUser(image, ["fim-exec", "true"])).toEqual({ code: 0, stdout: "", stderr: "" });
  });

  test("FIM_DIR_DATA is checked the same way; parents it needs are made private whatever the umask", () => {
    const place = userDir();
    const image = imageIn(place);
    // /tmp: root's, and writable by everyone; the advice is to choose another, never to change it.
    const tmp = runAsUser(image, ["fim-exec", "true"], { FIM_DIR_DATA: "/tmp" });
    refused(tmp, `The data directory '/tmp' belongs to root, not to you (uid ${user.uid}): what it holds would run in your sandbox. Unset FIM_DIR_DATA, or set it to a directory of yours that only you can write`);
    const shared = userDir(0o777);
    refused(
      runAsUser(image, ["fim-exec", "true"], { FIM_DIR_DATA: shared }),
      `The data directory '${shared}' is writable by other users (mode 0777): they could change what runs in your sandbox. Unset FIM_DIR_DATA, or set it to a directory of yours that only you can write`,
    );
    const nested = join(place, "a/b/data");
    expect(runAsUser(image, ["fim-exec", "true"], { FIM_DIR_DATA: nested }, "000").code).toBe(0);
    expect([mode(join(place, "a")), mode(join(place, "a/b")), mode(nested), mode(join(nested, "root"))]).toEqual(["755", "755", "700", "755"]);
  });
});
