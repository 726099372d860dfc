// Where the data directory is and what makes one unusable (core/data-dir.ts). Ownership is
// exercised by naming another uid as "this user": the directories stay the runner's own.
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { isPrivateGroup, locateDataDir, prepareDataDir, userDataDir, type DataDirChoice } from "../../core/data-dir.ts";

const uid = process.getuid!();
const base = mkdtempSync(join(tmpdir(), "fim-data-dir-unit-"));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let count = 0;
const fresh = () => {
  const dir = join(base, String(count++));
  mkdirSync(dir, { mode: 0o755 });
  chmodSync(dir, 0o755);
  return dir;
};
const layout = (data: string, dataChoice: DataDirChoice) => ({ data, upper: `${data}/root`, tmp: `${data}/tmp`, dataChoice });

describe("locating the data directory", () => {
  test("FIM_DIR_DATA wins (relative to the working directory); otherwise beside the image", () => {
    expect(locateDataDir("/x/app.flatimage", { FIM_DIR_DATA: "rel/data" })).toEqual({ path: join(process.cwd(), "rel/data"), source: "env" });
    const dir = fresh();
    expect(locateDataDir(`${dir}/app.flatimage`, {})).toEqual({ path: `${dir}/.app.flatimage.data`, source: "image" });
  });

  test("the per-user directory: under an absolute $XDG_DATA_HOME, else ~/.local/share; named by the image's name and path", () => {
    const home = fresh();
    expect(userDataDir("/opt/a/app.flatimage", { HOME: home })).toMatch(new RegExp(`^${home}/\\.local/share/flatimage/app\\.flatimage-[0-9a-f]{16}\\.data$`));
    expect(userDataDir("/opt/a/app.flatimage", { HOME: home, XDG_DATA_HOME: "relative" })).toStartWith(`${home}/.local/share/flatimage/`);
    expect(userDataDir("/opt/a/app.flatimage", { HOME: home, XDG_DATA_HOME: "/xdg" })).toStartWith("/xdg/flatimage/app.flatimage-");
    expect(userDataDir("/opt/a/app.flatimage", { HOME: home })).not.toBe(userDataDir("/opt/b/app.flatimage", { HOME: home }));
    // A $HOME that is not this user's (sudo may keep the caller's): the account's own home.
    expect(userDataDir("/opt/a/app.flatimage", { HOME: home }, uid + 1)).toStartWith(`${homedir()}/.local/share/flatimage/`);
  });

  test("once a per-user directory exists it is kept, even if the image's directory becomes writable", () => {
    const dir = fresh();
    const home = fresh();
    const image = `${dir}/app.flatimage`;
    mkdirSync(userDataDir(image, { HOME: home }), { recursive: true });
    expect(locateDataDir(image, { HOME: home })).toMatchObject({ path: userDataDir(image, { HOME: home }), source: "user" });
    // ...unless the directory beside the image exists: it wins.
    mkdirSync(`${dir}/.app.flatimage.data`);
    expect(locateDataDir(image, { HOME: home }).source).toBe("image");
  });
});

describe("checking it before a run", () => {
  test("the user's own directory passes; root and tmp are made inside it", () => {
    const data = join(fresh(), ".app.flatimage.data");
    prepareDataDir(layout(data, { path: data, source: "image" }));
    expect(Bun.spawnSync(["stat", "-c", "%a", data, `${data}/root`, `${data}/tmp`]).stdout.toString()).toBe("700\n755\n755\n");
  });

  test("someone else's is refused, naming the owner; nothing is made in it", () => {
    const data = join(fresh(), ".app.flatimage.data");
    mkdirSync(data, { mode: 0o755 });
    const other = uid === 0 ? 4242 : uid + 1;
    const expected =
      uid === 0
        ? `The data directory '${data}' belongs to root, not to you (uid ${other}): a run of the image with sudo probably made it. Give it back with: sudo chown -R ${other}:${process.getgid!()} '${data}'`
        : new RegExp(`^The data directory '${data}' belongs to \\S+ \\(uid ${uid}\\), not to you \\(uid ${other}\\): what it holds would run in your sandbox. Have it removed, or set FIM_DIR_DATA`);
    expect(() => prepareDataDir(layout(data, { path: data, source: "image" }), other)).toThrow(expected);
    expect(() => prepareDataDir(layout(data, { path: data, source: "env" }), other)).toThrow(/Unset FIM_DIR_DATA, or set it to a directory of yours that only you can write$/);
    expect(Bun.spawnSync(["ls", "-A", data]).stdout.toString()).toBe("");
  });

  test("a link made by someone else is refused even when it leads somewhere good", () => {
    const dir = fresh();
    mkdirSync(`${dir}/target`, { mode: 0o700 });
    const data = `${dir}/.app.flatimage.data`;
    symlinkSync(`${dir}/target`, data);
    // Root's links are trusted, so as root the link is given to another uid first.
    if (uid === 0) expect(Bun.spawnSync(["chown", "-h", "4242:4242", data]).exitCode).toBe(0);
    const [maker, self] = uid === 0 ? [4242, 4343] : [uid, uid + 1];
    expect(() => prepareDataDir(layout(data, { path: data, source: "image" }), self)).toThrow(
      new RegExp(`^The data directory '${data}' is a link made by (uid ${maker}|\\S+ \\(uid ${maker}\\)), not by you \\(uid ${self}\\)`),
    );
  });

  test("writable by others: refused with the chmod that fixes it; a file is not usable", () => {
    const data = join(fresh(), ".app.flatimage.data");
    mkdirSync(data);
    chmodSync(data, 0o757);
    expect(() => prepareDataDir(layout(data, { path: data, source: "image" }))).toThrow(
      `The data directory '${data}' is writable by other users (mode 0757): they could change what runs in your sandbox. Make it private: chmod go-w '${data}'`,
    );
    const file = join(fresh(), "file");
    writeFileSync(file, "");
    expect(() => prepareDataDir(layout(file, { path: file, source: "env" }))).toThrow(`The data directory '${file}' is not usable (ENOTDIR on '${file}'): set FIM_DIR_DATA to a writable directory`);
  });
});

describe("a group's write bit is trusted only for the user's private group", () => {
  const passwd = ["root:x:0:0:root:/root:/bin/sh", "alice:x:1000:1000::/home/alice:/bin/sh", "bob:x:1001:1001::/home/bob:/bin/sh", "carol:x:1002:100::/home/carol:/bin/sh", ""].join("\n");
  const group = ["root:x:0:", "alice:x:1000:", "bob:x:1001:bob,mallory", "users:x:100:", "dave:x:1003:", ""].join("\n");

  test("the user's primary group, named like the user, with no other member", () => {
    expect(isPrivateGroup(1000, 1000, 1000, passwd, group)).toBe(true);
  });

  test("a group named like the user that lists another member is shared", () => {
    expect(isPrivateGroup(1001, 1001, 1001, passwd, group)).toBe(false);
  });

  test("a group named like the user that is another user's primary group is shared", () => {
    const sharing = `${passwd}eve:x:1004:1000::/home/eve:/bin/sh\n`;
    expect(isPrivateGroup(1000, 1000, 1000, sharing, group)).toBe(false);
  });

  test("a group not named like the user, or not the user's primary group, or unknown, is not private", () => {
    expect(isPrivateGroup(100, 1002, 100, passwd, group)).toBe(false);
    expect(isPrivateGroup(1000, 1000, 100, passwd, group)).toBe(false);
    expect(isPrivateGroup(1005, 1005, 1005, passwd, group)).toBe(false);
  });
});
