// A run's instance directory is never taken for an ended run's while the run sets it up: a
// start sweeping the instance directories beside another start that is making its own must
// leave that one alone (eight first starts at once once lost one this way, under load).
import { expect, test } from "bun:test";
import { spawn } from "bun";
import { closeSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const registry = join(import.meta.dir, "../../plugins/instance/registry.ts");

/**
 * Runs `claims` (the body of a loop over `rounds` claims, in a process of its own, with `app`,
 * `pids`, `claimInstanceDir`, `claim(instance, launch)` and a counter `lost` in scope) beside a
 * process sweeping the instance directories as fast as it can; returns how many were lost.
 */
async function lostBesideASweep(processes: number, rounds: number, claims: string): Promise<string> {
  const app = mkdtempSync(join(tmpdir(), "fim-instances-"));
  // Live processes whose PIDs name the runs' directories, as a run's own PID does.
  const pids = Array.from({ length: processes }, () => spawn(["sleep", "120"]));
  try {
    // Sweeps until told to stop (its stdin closes).
    const sweeper = spawn(
      [process.execPath, "-e", `
        import { liveInstances } from ${JSON.stringify(registry)};
        const runtime = { paths: { app: ${JSON.stringify(app)} } };
        let open = true;
        (async () => { for await (const _ of Bun.stdin.stream()) {} open = false; })();
        let sweeps = 0;
        while (open) { liveInstances(runtime); sweeps++; if (sweeps % 50 === 0) await Bun.sleep(0); }
        console.log(sweeps);`],
      { stdin: "pipe", stdout: "pipe", stderr: "inherit" },
    );
    const claimer = spawn(
      [process.execPath, "-e", `
        import { closeSync, existsSync, fstatSync, rmSync, statSync } from "node:fs";
        import { claimInstanceDir } from ${JSON.stringify(registry)};
        const app = ${JSON.stringify(app)};
        const pids = ${JSON.stringify(pids.map((child) => child.pid))};
        const claim = (instance, launch) => claimInstanceDir({ paths: { app, instance } }, launch);
        let lost = 0;
        for (let i = 0; i < ${rounds}; i++) {
          const instance = app + "/instance/" + pids[i % pids.length];
          ${claims}
        }
        console.log(lost);`],
      { stdout: "pipe", stderr: "inherit" },
    );
    const lost = (await new Response(claimer.stdout).text()).trim();
    expect(await claimer.exited).toBe(0);
    sweeper.stdin.end();
    const sweeps = Number((await new Response(sweeper.stdout).text()).trim());
    expect(await sweeper.exited).toBe(0);
    expect(sweeps).toBeGreaterThan(100); // the two ran side by side
    return lost;
  } finally {
    for (const child of pids) child.kill();
    rmSync(app, { recursive: true, force: true });
  }
}

test("a sweep beside a run claiming its directory never removes it", async () => {
  // Runs that start one after another, each with a PID of its own: each claims its
  // directory, checks nobody removed it meanwhile, and ends.
  const lost = await lostBesideASweep(40, 2000, `
    const launch = { heldFds: [] };
    try {
      claim(instance, launch);
      if (!existsSync(instance + "/.alive")) lost++;
    } catch {
      lost++;
    }
    for (const fd of launch.heldFds) closeSync(fd);
    rmSync(instance, { recursive: true, force: true });`);
  expect(lost).toBe("0");
}, 60_000);

test("a run under a reused PID keeps the directory an ended run of that PID left, beside a sweep", async () => {
  // A run ends leaving its directory behind (as one killed does), and a run under the same
  // PID claims it at once, while the sweeper may be deciding about the one left.
  const lost = await lostBesideASweep(20, 1000, `
    const ended = { heldFds: [] };
    claim(instance, ended);
    for (const fd of ended.heldFds) closeSync(fd);
    const launch = { heldFds: [] };
    try {
      claim(instance, launch);
      Bun.sleepSync(1); // a sweep that took the ended run's lock has removed what it removes
      if (statSync(instance + "/.alive").ino !== fstatSync(launch.heldFds[0]).ino) lost++;
    } catch {
      lost++;
    }
    for (const fd of launch.heldFds) closeSync(fd);`);
  expect(lost).toBe("0");
}, 60_000);

test("an instance directory whose run has ended is swept", async () => {
  const app = mkdtempSync(join(tmpdir(), "fim-instances-"));
  try {
    const { claimInstanceDir, liveInstances } = await import(registry);
    const child = spawn(["sleep", "0"]);
    await child.exited; // a PID that has ended
    const instance = `${app}/instance/${child.pid}`;
    const launch = { heldFds: [] as number[] };
    claimInstanceDir({ paths: { app, instance } } as never, launch as never);
    for (const fd of launch.heldFds) closeSync(fd); // the run ends
    liveInstances({ paths: { app } } as never);
    expect(existsSync(instance)).toBe(false);
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
});
