// The union filesystem in runs: the UNIONFS overlay type and casefold inside the sandbox,
// what fim-layer commit keeps of its marks (read back by every overlay type), and a
// killed filesystem process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "bun";
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
let upper: string;

beforeAll(() => {
  image = freshImage();
  upper = join(image.dir, ".app.flatimage.data/root");
  const src = join(image.dir, "base.src");
  for (const [path, content] of Object.entries({
    "opt/Mixed/ReadMe.TXT": "mixed case\n",
    "opt/Mixed/readme.txt": "lower case\n",
    "opt/dir/old": "old\n",
    "etc/gone.txt": "to be deleted\n",
  })) {
    mkdirSync(join(src, path, ".."), { recursive: true });
    writeFileSync(join(src, path), content);
  }
  writeFileSync(Buffer.from(`${src}/opt/caf\xe9`, "latin1"), "latin1 name\n");
  expect(image.run(["fim-layer", "create", src, join(image.dir, "base.layer")]).code).toBe(0);
  expect(image.run(["fim-layer", "add", join(image.dir, "base.layer")]).code).toBe(0);
});
afterAll(() => image.cleanup());

const sh = (script: string, env: Record<string, string>) => image.run(["fim-exec", "sh", "-c", script], { env });
/** Each name in a directory as hex, so bytes that are not UTF-8 can be compared. */
const HEX_NAMES = (dir: string) => `for f in ${dir}/*; do printf %s "\${f##*/}" | od -An -tx1 | tr -d ' \\n'; echo; done`;

describe("casefold in the sandbox", () => {
  test("the reference's check, exact names first (capitals in a layer stay visible), case-preserving creation", () => {
    const result = sh(
      "mkdir -p /hElLo/WoRlD && stat -c %n /hello/world /hEllO/WorlD && rmdir /hello/world && ls /opt/Mixed && cat /opt/MIXED/ReadMe.TXT /opt/mixed/readme.txt /OPT/MIXED/README.TXT && echo x > /Opt/NewFile && ls /opt | grep -i newfile",
      { FIM_CASEFOLD: "1", FIM_OVERLAY: "unionfs" },
    );
    expect(result.stderr).toBe("");
    expect(result.stdout).toBe("/hello/world\n/hEllO/WorlD\nReadMe.TXT\nreadme.txt\nmixed case\nlower case\nmixed case\nNewFile\n");
    expect(existsSync(join(upper, "opt/NewFile"))).toBe(true);
    expect(sh("rm -r /hello /opt/newfile", { FIM_CASEFOLD: "1" }).code).toBe(0);
  });

  test("the stored switch; over the BWRAP type it falls back to UNIONFS with the reference's warning; over OVERLAYFS it serves a view of it", () => {
    expect(image.run(["fim-casefold", "on"]).code).toBe(0);
    try {
      const bwrap = image.run(["fim-exec", "cat", "/ETC/GONE.TXT"], { env: { FIM_OVERLAY: "bwrap", FIM_DEBUG: "1" } });
      expect(bwrap.stdout).toContain("to be deleted\n");
      expect(lines(bwrap.stderr).filter((line) => line === "W::casefold cannot be used with bwrap overlayfs, falling back to unionfs")).toHaveLength(1);
      expect(lines(bwrap.stdout)).toContain("D::Overlay type: UNIONFS_FUSE");
      expect(lines(bwrap.stdout)).toContain("D::casefold is enabled");
      const overlayfs = image.run(["fim-exec", "sh", "-c", "echo v > /Opt/ViaOverlayfs; cat /opt/viaoverlayfs /ETC/GONE.TXT"], { env: { FIM_OVERLAY: "overlayfs", FIM_DEBUG: "1" } });
      expect(overlayfs.stdout).toContain("v\nto be deleted\n");
      expect(lines(overlayfs.stdout)).toContain("D::Overlay type: FUSE_OVERLAYFS");
      expect(readFileSync(join(upper, "opt/ViaOverlayfs"), "utf8")).toBe("v\n");
    } finally {
      expect(image.run(["fim-casefold", "off"]).code).toBe(0);
    }
    expect(sh("cat /ETC/GONE.TXT", { FIM_OVERLAY: "unionfs" }).code).not.toBe(0);
    expect(sh("rm /opt/ViaOverlayfs", { FIM_OVERLAY: "unionfs" }).code).toBe(0);
  });
});

describe("UNIONFS and fim-layer commit", () => {
  test("deletions, a recreated directory and a name that is not UTF-8 survive the commit, as every overlay type sees them", () => {
    const changed = sh(`rm -r /opt/dir /etc/gone.txt && mkdir /opt/dir && echo new > /opt/dir/new && echo raw > "/opt/$(printf 'n\\377')"`, { FIM_OVERLAY: "unionfs" });
    expect(changed.stderr).toBe("");
    const gone = lstatSync(join(upper, "etc/gone.txt"));
    expect(gone.isCharacterDevice() && gone.rdev === 0).toBe(true);
    expect(image.run(["fim-layer", "commit", "binary"]).code).toBe(0);
    expect(readdirSync(upper)).toEqual([]);
    for (const type of ["unionfs", "bwrap", "overlayfs"]) {
      const seen = sh(`ls /opt/dir; test -e /etc/gone.txt && echo still-there; ${HEX_NAMES("/opt")}; cat "/opt/$(printf 'caf\\351')" "/opt/$(printf 'n\\377')"`, { FIM_OVERLAY: type });
      expect({ type, stdout: seen.stdout, stderr: seen.stderr }).toEqual({
        type,
        stdout: `new\n${Buffer.from("Mixed").toString("hex")}\n636166e9\n${Buffer.from("dir").toString("hex")}\n6eff\nlatin1 name\nraw\n`,
        stderr: "",
      });
    }
  });
});

describe("a killed filesystem process", () => {
  test("the guest sees the filesystem gone; the run still ends and leaves no process or mount", async () => {
    const run = spawn([image.path, "fim-exec", "sh", "-c", "touch /started; sleep 2; ls /opt >/dev/null 2>&1 && echo alive || echo gone"], {
      env: { ...process.env, FIM_OVERLAY: "unionfs" },
      cwd: image.dir,
      stdout: "pipe",
      stderr: "pipe",
    });
    const servers = () =>
      readdirSync("/proc")
        .filter((pid) => /^\d+$/.test(pid))
        .filter((pid) => {
          try {
            const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
            // The server itself: the bundled loader running the launcher (its supervisors'
            // command lines carry the same words).
            return argv[0]!.endsWith("/ld-linux-x86-64.so.2") && argv[4] === "fim-unionfs-serve" && argv[5]!.includes(`"upper":"${upper}"`);
          } catch {
            return false;
          }
        });
    const started = join(upper, "started");
    for (let i = 0; i < 250 && !existsSync(started); i++) await Bun.sleep(20);
    const found = servers();
    expect(found).toHaveLength(1);
    process.kill(Number(found[0]), "SIGKILL");
    expect({ code: await run.exited, stdout: await new Response(run.stdout).text() }).toEqual({ code: 0, stdout: "gone\n" });
    expect(servers()).toEqual([]);
    expect(readFileSync("/proc/self/mountinfo", "utf8")).not.toContain(image.dir);
    // The next run mounts afresh.
    expect(sh("cat /opt/dir/new; rm /started", { FIM_OVERLAY: "unionfs" }).stdout).toBe("new\n");
  });
});
