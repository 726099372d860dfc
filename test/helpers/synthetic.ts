// A small synthetic image (a 64-byte ELF header as the launcher) for fast format tests.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { assembleImage } from "../../scripts/assemble.ts";

export async function syntheticImage(options: { layers?: Buffer[] } = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "fim-synthetic-"));
  const elf = Buffer.alloc(64);
  elf.writeUInt32BE(0x7f454c46, 0);
  elf[4] = 2; // 64-bit
  elf[5] = 1; // little-endian
  elf.writeBigUInt64LE(64n, 0x28); // e_shoff: section headers (none) at the end
  elf.writeUInt16LE(64, 0x3a);
  elf.writeUInt16LE(0, 0x3c);
  writeFileSync(join(dir, "launcher"), elf);
  const tool = join(dir, "tool");
  writeFileSync(tool, "#!/bin/sh\necho tool\n");
  const layers = (options.layers ?? []).map((bytes, i) => {
    const path = join(dir, `layer${i}`);
    writeFileSync(path, bytes);
    return path;
  });
  const output = join(dir, "synthetic.flatimage");
  await assembleImage({
    launcher: join(dir, "launcher"),
    output,
    tools: [{ name: "tool", path: tool, version: "1.0", source: "test", licenses: [{ type: "MIT", url: "https://example.com" }] }],
    layers,
    metadata: { version: "v0.0.0", commit: "abcdef0", timestamp: "20260101000000", distribution: "BLUEPRINT" },
    progress: () => {},
  });
  return output;
}
