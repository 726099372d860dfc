// Start-up profile by phase: FIM_PROFILE=1 prints how long each phase took, on stderr.
const enabled = process.env.FIM_PROFILE === "1";
const marks: [string, number][] = [];

export function mark(phase: string): void {
  if (enabled) marks.push([phase, performance.now()]);
}

export function printProfile(): void {
  if (!enabled) return;
  let previous = 0;
  const lines = marks.map(([phase, at]) => {
    const line = `profile: ${phase.padEnd(10)} ${(at - previous).toFixed(2).padStart(7)} ms  (at ${at.toFixed(2)} ms)`;
    previous = at;
    return line;
  });
  process.stderr.write(`${lines.join("\n")}\n`);
}
