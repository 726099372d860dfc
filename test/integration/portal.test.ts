// The portal: fim_portal in the guest runs programs on the host.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { freshImage, type TestImage } from "../helpers/image.ts";

let image: TestImage;
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

const sh = (script: string, options: { stdin?: string } = {}) => image.run(["fim-exec", "sh", "-c", script], options);

describe("fim_portal", () => {
  test("runs a host program: its output, exit code, and 128+N for a signal", () => {
    // The guest has no python3; the host does (Node's machines do): it must come from the host.
    expect(sh("command -v python3 || echo none").stdout).toBe("none\n");
    const out = sh('fim_portal python3 -c "import sys; print(sys.argv[1:])" a "b c"; echo "rc=$?"; fim_portal sh -c "exit 3"; echo "rc=$?"; fim_portal sh -c "kill -TERM \\$\\$"; echo "rc=$?"');
    expect(out.stdout).toBe("['a', 'b c']\nrc=0\nrc=3\nrc=143\n");
  });

  test("signals sent to fim_portal reach the host program", () => {
    const out = sh('fim_portal sh -c "trap \\"exit 9\\" TERM; sleep 5 & wait" & p=$!; sleep 0.5; kill -TERM $p; wait $p; echo "rc=$?"');
    expect(out.stdout).toBe("rc=9\n");
  });

  test("an unknown program: the reference's messages and exit 1", () => {
    const out = sh("fim_portal no-such-program-here; echo rc=$?");
    expect(out.stdout).toBe("rc=1\n");
    expect(out.stderr.split("\n").map((line) => line.replace(/^E::fim_portal::\d+::/, "E::"))).toEqual([
      "E::Could not start PID, program not found?",
      "E::Failure to dispatch process request",
      "E::Failure to dispatch process request",
      "",
    ]);
  });

  test("10 MB through stdin and back, intact; concurrent calls", () => {
    const data = Buffer.alloc(10 * 1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    const expected = new Bun.CryptoHasher("sha256").update(data).digest("hex");
    const result = Bun.spawnSync([image.path, "fim-exec", "sh", "-c", "fim_portal cat | sha256sum"], { stdin: data, stdout: "pipe", stderr: "pipe" });
    expect(result.stdout.toString().split(" ")[0]).toBe(expected);
    const parallel = sh('for i in 1 2 3 4 5 6 7 8; do fim_portal sh -c "sleep 0.3; echo $i" & done; wait');
    expect(parallel.stdout.trim().split("\n").sort()).toEqual(["1", "2", "3", "4", "5", "6", "7", "8"]);
  });

  test("private: the socket is 0600 in the user's own tree, and only this instance's processes are served", () => {
    const out = sh('s=$FIM_PORTAL_SOCKET; stat -c "%a %U" "$s"; echo "$s"');
    const [mode, socket] = out.stdout.trim().split("\n");
    expect(mode!.split(" ")[0]).toBe("600");
    expect(socket).toStartWith(`/tmp/fim/app/${process.getuid!()}/`);
    expect(statSync(`/tmp/fim/app/${process.getuid!()}`).mode & 0o777).toBe(0o700);
    // A process of the same user outside the instance (here, the host) is refused.
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", 'echo "$FIM_PORTAL_SOCKET"; sleep 5'], { stdout: "pipe", stderr: "pipe" });
    return (async () => {
      const reader = guest.stdout.getReader();
      const path = new TextDecoder().decode((await reader.read()).value).trim();
      const client = readdirSync(join(path, "../../../..", "bin")).includes("fim_portal") ? join(path, "../../../..", "bin/fim_portal") : "";
      expect(client).not.toBe("");
      const refused = Bun.spawnSync([client, "true"], { env: { ...process.env, FIM_PORTAL_SOCKET: path }, stderr: "pipe" });
      expect(refused.exitCode).toBe(1);
      expect(refused.stderr.toString()).toContain("The portal refused this process (not in its instance)");
      guest.kill();
      await guest.exited;
    })();
  });

  test("the daemon ends with the run, also when the launcher is killed with SIGKILL", async () => {
    expect(sh("true").code).toBe(0);
    const guest = Bun.spawn([image.path, "fim-exec", "sh", "-c", "echo ready; sleep 30"], { stdout: "pipe", stderr: "pipe" });
    const reader = guest.stdout.getReader();
    await reader.read();
    const mine = () => portalDaemonsOf(guest.pid);
    expect(mine().length).toBe(1);
    guest.kill(9);
    await guest.exited;
    for (let i = 0; i < 30 && mine().length > 0; i++) await Bun.sleep(100);
    expect(mine()).toEqual([]);
  });
});

function portalDaemonsOf(pid: number): string[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .map((name) => {
      try {
        return readFileSync(`/proc/${name}/cmdline`, "utf8").replace(/\0/g, " ");
      } catch {
        return "";
      }
    })
    .filter((cmdline) => cmdline.split(" ")[1] === "--daemon" && cmdline.includes(`/instance/${pid}/`));
}
