// Runs on one data directory share one set of mounts: the first starts the namespace that
// holds them, later ones join it; it ends with its last guest, and killing any process
// leaves no mount and no orphan.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, existsSync, readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freshImage, lines, type TestImage } from "../helpers/image.ts";

let image: TestImage;
const me = process.getuid!();
beforeAll(() => (image = freshImage()));
afterAll(() => image.cleanup());

type Child = ReturnType<typeof Bun.spawn>;

function background(args: string[], env: Record<string, string> = {}): Child {
  return Bun.spawn([image.path, ...args], { stdout: "pipe", stderr: "pipe", stdin: "pipe", env: { ...process.env, ...env } });
}

/** Lets a guest's `read line` return. */
function release(child: Child): void {
  const stdin = child.stdin as import("bun").FileSink;
  stdin.write("go\n");
  stdin.end();
}

/** The rest of a child's stdout. */
async function rest(child: Child): Promise<string> {
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  let text = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return text;
    text += new TextDecoder().decode(value);
  }
}

/** Waits for the guest's first line (the test's own signal that it is running). */
async function readLine(child: Child): Promise<string> {
  const reader = (child.stdout as ReadableStream<Uint8Array>).getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  return new TextDecoder().decode(value);
}

/** The namespace holders of this test's image (fim_supervise … --hold …, naming its data directory). */
function holders(): number[] {
  return readdirSync("/proc")
    .filter((name) => /^\d+$/.test(name))
    .filter((pid) => {
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
        // The namespace's pid 1 (its fork waiting for the lock has the same command line).
        const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]?.split(/\s+/);
        return cmdline[0]?.endsWith("fim_supervise") && cmdline.includes("--hold") && cmdline.some((word) => word.includes(image.dir)) && nspid?.at(-1) === "1";
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Waits until no holder is left (each ends with its last guest, at once). */
async function noHolderLeft(): Promise<void> {
  for (let i = 0; i < 500 && holders().length > 0; i++) await Bun.sleep(10);
  expect(holders()).toEqual([]);
}

describe("instances share one set of mounts", () => {
  test("upstream's test_instances_exec under UNIONFS: fim-root and fim-exec at once, exec into each", async () => {
    const env = { FIM_OVERLAY: "unionfs" };
    const rooted = background(["fim-root", "sh", "-c", "echo x > /etc/written-by-root; echo ready; read line"], env);
    expect(await readLine(rooted)).toBe("ready\n");
    const user = background(["fim-exec", "sh", "-c", "echo ready; read line"], env);
    expect(await readLine(user)).toBe("ready\n");
    try {
      const listed = image.run(["fim-instance", "list"]).stdout.trim().split("\n");
      expect(listed).toHaveLength(2);
      const [first, second] = [rooted.pid, user.pid].sort((a, b) => a - b);
      expect(listed).toEqual([`0:${first}`, `1:${second}`]);
      const index = (pid: number) => String(pid === first ? 0 : 1);
      expect(image.run(["fim-instance", "exec", index(rooted.pid), "id", "-u"]).stdout).toBe("0\n");
      expect(image.run(["fim-instance", "exec", index(user.pid), "id", "-u"]).stdout).toBe(`${me}\n`);
      // One writable root: what the root guest wrote, the user's guest reads.
      expect(image.run(["fim-instance", "exec", index(user.pid), "cat", "/etc/written-by-root"]).stdout).toBe("x\n");
      expect(holders()).toHaveLength(1);
    } finally {
      for (const child of [rooted, user]) release(child);
    }
    expect(await rooted.exited).toBe(0);
    expect(await user.exited).toBe(0);
    await noHolderLeft();
  }, 60_000);

  test("a start beside a running instance: exit code, stdin, stdout and signals as a first start", async () => {
    const first = background(["fim-exec", "sh", "-c", "echo ready; read line"]);
    expect(await readLine(first)).toBe("ready\n");
    try {
      const joined = image.run(["fim-exec", "sh", "-c", "tr a-z A-Z; echo err >&2; exit 7"], { stdin: "through\n" });
      expect(joined.code).toBe(7);
      expect(joined.stdout).toBe("THROUGH\n");
      expect(joined.stderr).toBe("err\n");
      const signalled = background(["fim-exec", "sh", "-c", "trap 'echo term; exit 3' TERM; echo ready; while :; do sleep 0.05; done"]);
      expect(await readLine(signalled)).toBe("ready\n");
      signalled.kill("SIGTERM");
      expect(await signalled.exited).toBe(3);
      expect(await rest(signalled)).toBe("term\n");
      const killed = background(["fim-exec", "sh", "-c", "echo ready; sleep 30"]);
      expect(await readLine(killed)).toBe("ready\n");
      killed.kill("SIGTERM");
      expect(await killed.exited).toBe(143);
      expect(holders()).toHaveLength(1);
    } finally {
      release(first);
    }
    expect(await first.exited).toBe(0);
    await noHolderLeft();
  }, 60_000);

  test("the holder outlives the first run while another uses it, and ends with the last", async () => {
    const first = background(["fim-exec", "sh", "-c", "echo ready; read line"]);
    expect(await readLine(first)).toBe("ready\n");
    const second = background(["fim-exec", "sh", "-c", "echo ready; read line; echo still"]);
    expect(await readLine(second)).toBe("ready\n");
    release(first);
    expect(await first.exited).toBe(0);
    expect(holders()).toHaveLength(1);
    release(second);
    expect(await second.exited).toBe(0);
    expect(await rest(second)).toBe("still\n");
    await noHolderLeft();
  }, 60_000);

  test("SIGKILL of a run's launcher, of the holder: no guest, no mount, no orphan is left", async () => {
    const first = background(["fim-exec", "sh", "-c", "echo ready; sleep 3007"]);
    expect(await readLine(first)).toBe("ready\n");
    const second = background(["fim-exec", "sh", "-c", "echo ready; sleep 3011"]);
    expect(await readLine(second)).toBe("ready\n");
    first.kill("SIGKILL");
    await first.exited;
    // The other run keeps its guest and the mounts.
    expect(image.run(["fim-exec", "true"]).code).toBe(0);
    const [holder] = holders();
    expect(holder).toBeDefined();
    process.kill(holder!, "SIGKILL");
    expect(await second.exited).not.toBe(0);
    await noHolderLeft();
    const guests = readdirSync("/proc").filter((pid) => /^\d+$/.test(pid) && /sleep\0(3007|3011)\0/.test(readFileSafe(`/proc/${pid}/cmdline`)));
    expect(guests).toEqual([]);
    // And the next start mounts anew.
    expect(image.run(["fim-exec", "true"]).code).toBe(0);
  }, 60_000);

  test("a run whose configuration differs from the running holder's says so at once", async () => {
    const first = background(["fim-exec", "sh", "-c", "echo ready; read line"], { FIM_OVERLAY: "unionfs" });
    expect(await readLine(first)).toBe("ready\n");
    try {
      const other = image.run(["fim-exec", "true"], { env: { FIM_OVERLAY: "overlayfs" } });
      expect(other.code).toBe(125);
      expect(lines(other.stderr)[0]).toMatch(/^C::An instance of this image with another configuration \(overlay UNIONFS.*this run: overlay OVERLAYFS.*\) is running on .*: it must end before/);
    } finally {
      release(first);
    }
    expect(await first.exited).toBe(0);
    await noHolderLeft();
  }, 60_000);
});

describe("fim-layer commit while a guest writes", () => {
  test("it refuses while the guest runs; afterwards every line the guest wrote is in the committed layer", async () => {
    const writer = background(["fim-exec", "sh", "-c", "i=0; echo ready; while [ ! -e /etc/stop ]; do echo $i >> /etc/lines; sync; i=$((i+1)); done; echo $i"]);
    expect(await readLine(writer)).toBe("ready\n");
    const refused = image.run(["fim-layer", "commit", "binary"]);
    expect(refused.code).toBe(125);
    expect(lines(refused.stderr)).toContain(`E::An instance of this image runs on '${join(image.dir, ".app.flatimage.data")}' ('fim-instance list' shows it): it must end before its changes can be committed (what it writes stays in '${join(image.dir, ".app.flatimage.data/root")}' for the next commit)`);
    // Stops the writer through the shared root.
    expect(image.run(["fim-exec", "touch", "/etc/stop"]).code).toBe(0);
    expect(await writer.exited).toBe(0);
    const written = Number((await rest(writer)).trim());
    expect(written).toBeGreaterThan(0);
    expect(image.run(["fim-layer", "commit", "binary"]).code).toBe(0);
    const committed = image.run(["fim-exec", "cat", "/etc/lines"]).stdout.trim().split("\n").map(Number);
    expect(committed).toEqual(Array.from({ length: written }, (_, i) => i));
    image.run(["fim-exec", "rm", "/etc/stop", "/etc/lines"]);
  }, 60_000);
});

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "latin1");
  } catch {
    return "";
  }
}

export { existsSync, join };

describe("the boot stub starts the holder of the last start's plan while the launcher loads", () => {
  const data = () => join(image.dir, "data-plan");
  const run = (env: Record<string, string> = {}, command = "fim-exec") => image.run([command, "sh", "-c", "cat /etc/hello 2>/dev/null; echo ran"], { env: { FIM_DIR_DATA: data(), FIM_DEBUG: "1", ...env } });
  const started = "Started the namespace holder of the last start's plan";
  const kept = "The holder started from the last start's plan is this run's: kept";
  const ended = "The holder started from the last start's plan is not this run's: ending it";
  const app = () => image.run(["fim-exec", "sh", "-c", 'printf %s "$FIM_DIR_APP"'], { env: { FIM_DIR_DATA: data() } }).stdout;
  /** Where the stub looks for the plan of a start with FIM_DIR_DATA set to an absolute path (fim_stub.c, start_plan_path). */
  const planFile = (dataDir = data()) => join(app(), "starts", new Bun.CryptoHasher("sha256").update(`${image.path}\0+${dataDir}\0`).digest("hex").slice(0, 16));

  test("the same configuration keeps the holder it started; another ends it and starts its own", () => {
    const first = run();
    expect(first.code).toBe(0);
    expect(first.stdout).not.toContain("last start's plan");
    const second = run();
    expect(second.code).toBe(0);
    expect(lines(second.stdout)).toContain("ran");
    expect(second.stdout).toContain(started);
    expect(second.stdout).toContain(kept);
    // Another overlay type mounts otherwise: the guessed holder goes, this run's comes.
    const other = run({ FIM_OVERLAY: "unionfs" });
    expect(other.code).toBe(0);
    expect(other.stdout).toContain(ended);
    expect(lines(other.stdout)).toContain("ran");
    expect(holders()).toEqual([]);
    // The plan saved is the last start's.
    expect(run({ FIM_OVERLAY: "unionfs" }).stdout).toContain(kept);
    expect(holders()).toEqual([]);
  });

  test("the plan is saved where the stub looks for it, in its format", () => {
    expect(run().code).toBe(0);
    const words = readFileSync(planFile(), "utf8").split("\0");
    expect(words.pop()).toBe("");
    const keys = words.filter((_, index) => index % 2 === 0);
    expect([...new Set(keys)]).toEqual(["commands", "image", "data", "mounts", "argv"]);
    expect(words[keys.indexOf("data") * 2 + 1]).toBe(data());
    expect(words[keys.indexOf("commands") * 2 + 1]!.split(" ")).toContain("fim-exec");
  });

  test("only the commands that started a holder get a head start; each adds its own", () => {
    expect(run().code).toBe(0);
    const rooted = run({}, "fim-root");
    expect(rooted.code).toBe(0);
    expect(lines(rooted.stdout)).toContain("ran");
    expect(rooted.stdout).not.toContain(started);
    expect(run({}, "fim-root").stdout).toContain(kept);
    expect(run().stdout).toContain(kept);
  });

  test("a changed image, a data directory others may write, a running instance: no head start", async () => {
    expect(run().code).toBe(0);
    // Its layers may have changed (fim-layer add, commit): another mtime is another image.
    const now = new Date();
    utimesSync(image.path, now, new Date(now.getTime() + 5000));
    const touched = run();
    expect(touched.code).toBe(0);
    expect(touched.stdout).toContain("No head start for the namespace holder: the last start's plan is not this one's");
    expect(touched.stdout).not.toContain(started);
    expect(run().stdout).toContain(kept);
    // The launcher refuses such a data directory before any guest runs; the stub starts nothing there.
    chmodSync(data(), 0o757);
    try {
      const refused = run();
      expect(refused.code).not.toBe(0);
      expect(refused.stdout).not.toContain(started);
      expect(refused.stdout + refused.stderr).toContain(data());
    } finally {
      chmodSync(data(), 0o755);
    }
    // A run holds the data directory's holder: the next start joins it.
    const running = background(["fim-exec", "sh", "-c", "echo ready; read line"], { FIM_DIR_DATA: data() });
    try {
      expect(await readLine(running)).toBe("ready\n");
      const joined = run();
      expect(joined.code).toBe(0);
      expect(joined.stdout).toContain("No head start for the namespace holder: a run on its data directory holds a lock");
      expect(joined.stdout).toContain("Joining the namespace holder");
    } finally {
      release(running);
      await running.exited;
    }
    await noHolderLeft();
  });

  test("a head start on another data directory than the run's is ended, and the run starts its own", async () => {
    const elsewhere = join(image.dir, "data-plan-elsewhere");
    expect(run({ FIM_DIR_DATA: elsewhere }).code).toBe(0);
    expect(run().code).toBe(0);
    // This start's plan names the other data directory (as a HOME or a directory changed behind it could).
    copyFileSync(planFile(elsewhere), planFile());
    const result = run();
    expect(result.code).toBe(0);
    expect(lines(result.stdout)).toContain("ran");
    expect(result.stdout).toContain(started);
    expect(result.stdout).toContain("The holder started from the last start's plan is for another data directory: ending it");
    expect(run().stdout).toContain(kept);
    await noHolderLeft();
  });

  test("a start that fails before it runs a guest leaves no holder of its head start", async () => {
    expect(run().code).toBe(0);
    const failed = image.run(["fim-exec"], { env: { FIM_DIR_DATA: data(), FIM_DEBUG: "1" } });
    expect(failed.code).toBe(125);
    expect(failed.stdout).toContain(started);
    expect(failed.stderr).toContain("Incorrect number of arguments");
    await noHolderLeft();
    expect(run().stdout).toContain(kept);
  });

  test("a damaged plan is not used", () => {
    expect(run().code).toBe(0);
    const file = planFile();
    const good = readFileSync(file, "latin1");
    const damages = [
      "not a plan",
      good.slice(0, -1), // not NUL-ended
      good.replace(/argv\0[^\0]*\0/g, ""), // no command line
      `${good}unknown\0key\0`,
      good.replace(/data\0[^\0]*\0/, "data\0relative/path\0"),
    ];
    for (const damage of damages) {
      writeFileSync(file, damage, "latin1");
      const result = run();
      expect(result.code).toBe(0);
      expect(lines(result.stdout)).toContain("ran");
      expect(result.stdout).not.toContain("last start's plan");
    }
    expect(run().stdout).toContain(kept);
  });

  test("what a start killed while saving its plan left is swept by the next that saves one", () => {
    expect(run().code).toBe(0);
    const file = planFile();
    const ended = Bun.spawnSync(["true"]).pid; // its PID names no process now
    const saving = Bun.spawn(["sleep", "30"]);
    try {
      writeFileSync(`${file}.${ended}.tmp`, "half");
      writeFileSync(`${file}.${saving.pid}.tmp`, "half");
      writeFileSync(file, "not a plan"); // so that this start saves its own
      expect(run().code).toBe(0);
      expect(existsSync(`${file}.${ended}.tmp`)).toBe(false);
      expect(existsSync(`${file}.${saving.pid}.tmp`)).toBe(true);
      expect(run().stdout).toContain(kept);
    } finally {
      saving.kill();
    }
  });
});
