// A small synthetic image (a 64-byte ELF header as the stub, made-up boot parts) for fast
// format tests.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assembleImage } from "../../scripts/assemble.ts";

const provenance = { version: "1.0", source: "test", licenses: [{ type: "MIT", url: "https://example.com" }] };

export async function syntheticImage(options: { layers?: Buffer[] } = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "fim-synthetic-"));
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf.writeBigUInt64LE(64n, 0x28); // e_shoff: section headers (none) at the end
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(0, 0x3c);
  writeFileSync(join(dir, "stub"), elf);
  writeFileSync(join(dir, "launcher"), "launcher bytes");
  writeFileSync(join(dir, "loader"), "loader bytes");
  const tool = join(dir, "tool");
  writeFileSync(tool, "#!/bin/sh\necho tool\n");
  const layers = (options.layers ?? []).map((bytes, i) => {
    const path = join(dir, `layer${i}`);
    writeFileSync(path, bytes);
    return path;
  });
  const output = join(dir, "synthetic.flatimage");
  await assembleImage({
    stub: join(dir, "stub"),
    stubProvenance: provenance,
    boot: [
      { path: "bin/fim_boot", file: join(dir, "launcher"), mode: 0o755, provenance },
      { path: "lib/ld-linux-x86-64.so.2", file: join(dir, "loader"), mode: 0o755, provenance },
    ],
    loader: "lib/ld-linux-x86-64.so.2",
    launcher: "bin/fim_boot",
    library: "lib",
    cpuLevel: 2,
    level: 3,
    output,
    tools: [{ name: "tool", path: tool, ...provenance }],
    layers,
    briefCommands: ["default", "fim-exec"],
    metadata: { version: "v0.0.0", commit: "abcdef0", timestamp: "20260101000000", distribution: "BLUEPRINT" },
    progress: () => {},
  });
  return output;
}
