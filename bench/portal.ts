// The portal against running the same host command directly, side by side: the round trip
// of `true`, and a 100 MB pipe through `cat`. Both are allowed by name and path (the
// allowlist check is part of what is measured; `fim-portal all on` skips it).
//   bun bench/portal.ts [image]
import { rmSync } from "node:fs";
import { benchImage } from "./lib.ts";

const { dir, image } = benchImage("portal");
try {
  const allowed = Bun.spawnSync([image, "fim-portal", "allow", "/bin/true", "cat"], { stderr: "pipe" });
  if (allowed.exitCode !== 0) throw new Error(allowed.stderr.toString());
  // The same loop runs on the host (direct) and in one guest (through the portal), so only
  // the portal call itself differs.
  const loop = (prefix: string) => `
    t() { local s=\${EPOCHREALTIME/./} e; "$@"; e=\${EPOCHREALTIME/./}; echo $(( e - s )); }
    for i in $(seq 1 30); do echo "true $(t ${prefix} /bin/true)"; done
    for i in 1 2 3; do echo "pipe $(t sh -c '$FIM_DIR_APP_BIN/busybox head -c 104857600 /dev/zero | ${prefix} cat > /dev/null')"; done`;
  // The writing side is the runtime's busybox on both sides.
  const bin = Bun.spawnSync([image, "fim-exec", "sh", "-c", 'echo "$FIM_DIR_APP_BIN"'], { stdout: "pipe" }).stdout.toString().trim();
  const host = Bun.spawnSync(["bash", "-c", loop("")], { stdout: "pipe", stderr: "pipe", env: { ...process.env, FIM_DIR_APP_BIN: bin } });
  const guest = Bun.spawnSync([image, "fim-exec", "bash", "-c", loop("fim_portal")], { stdout: "pipe", stderr: "pipe" });
  if (guest.exitCode !== 0) throw new Error(guest.stderr.toString());
  const parse = (output: Buffer) => {
    const samples = new Map<string, number[]>();
    for (const line of output.toString().trim().split("\n")) {
      const [name, micros] = line.split(" ");
      samples.set(name!, [...(samples.get(name!) ?? []), Number(micros) / 1000]);
    }
    return (name: string) => {
      const sorted = [...samples.get(name)!].sort((a, b) => a - b);
      return sorted[Math.floor(sorted.length / 2)]!;
    };
  };
  const [onHost, viaPortal] = [parse(host.stdout), parse(guest.stdout)];
  const [direct, portal] = [onHost("true"), viaPortal("true")];
  console.log(`round trip of true:   direct ${direct.toFixed(2)} ms, portal ${portal.toFixed(2)} ms: ratio ${(portal / direct).toFixed(2)}x`);
  const [pipeDirect, pipePortal] = [onHost("pipe"), viaPortal("pipe")];
  console.log(`100 MB pipe:          direct ${(100 / (pipeDirect / 1000)).toFixed(0)} MB/s, portal ${(100 / (pipePortal / 1000)).toFixed(0)} MB/s: time ratio ${(pipePortal / pipeDirect).toFixed(2)}x`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
