import { describe, expect, test } from "bun:test";
import { cwdWarning } from "../../plugins/run/cwd.ts";

const grantable = { home: ["/home/ann"], media: ["/media", "/run/media", "/mnt"] };

describe("a working directory the sandbox does not show", () => {
  test("nothing to say when the sandbox shows it, or it is /", () => {
    expect(cwdWarning({ cwd: "/home/ann/src", visible: ["/tmp", "/home/ann"], grantable })).toBeUndefined();
    expect(cwdWarning({ cwd: "/home/ann", visible: ["/home/ann/"], grantable })).toBeUndefined();
    expect(cwdWarning({ cwd: "/tmp/", visible: ["/tmp"], grantable })).toBeUndefined();
    expect(cwdWarning({ cwd: "/srv/data", visible: ["/"], grantable })).toBeUndefined();
    expect(cwdWarning({ cwd: "/", visible: [], grantable })).toBeUndefined();
  });

  test("under the home directory: grant home, or bind it", () => {
    expect(cwdWarning({ cwd: "/home/ann/project", visible: ["/tmp"], grantable })).toBe(
      "The working directory '/home/ann/project' is not visible in the sandbox, so the program does not start there (relative paths do not reach its files): grant it with 'fim-perms add home' or 'fim-bind add rw /home/ann/project /home/ann/project'",
    );
  });

  test("elsewhere: the permission that shows it, if any, else a bind (quoted for the shell)", () => {
    expect(cwdWarning({ cwd: "/media/usb", visible: [], grantable })).toContain("grant it with 'fim-perms add media' or 'fim-bind add rw /media/usb /media/usb'");
    expect(cwdWarning({ cwd: "/srv/my data", visible: ["/tmp"], grantable })).toEndWith("grant it with 'fim-bind add rw '/srv/my data' '/srv/my data''");
  });

  test("a sibling that only shares a prefix is not inside", () => {
    const text = cwdWarning({ cwd: "/home/anna", visible: ["/home/ann"], grantable });
    expect(text).toStartWith("The working directory '/home/anna' is not visible");
    expect(text).toEndWith("'fim-bind add rw /home/anna /home/anna'");
  });
});
