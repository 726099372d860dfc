// blueprint's root filesystem (reference §17.2): the directories and files that the sandbox
// binds over, and /fim/config. Programs come from the runtime's own bash and busybox.
import { mkdirSync, writeFileSync } from "node:fs";

export async function bootstrap(dir: string, progress: (text: string) => void): Promise<void> {
  for (const path of ["fim/config", "tmp", "proc", "sys", "dev", "run/media", "mnt", "media", "home", "etc", "root"]) {
    mkdirSync(`${dir}/${path}`, { recursive: true });
  }
  for (const file of ["host.conf", "hosts", "nsswitch.conf", "resolv.conf"]) writeFileSync(`${dir}/etc/${file}`, "");
  // Runs as a user get a generated passwd and the host's group bound over these; fim-root keeps
  // the image's own (package scripts edit them), so root must be named there (`fim-root whoami`).
  writeFileSync(`${dir}/etc/passwd`, "root:x:0:0:root:/root:/bin/sh\n");
  writeFileSync(`${dir}/etc/group`, "root:x:0:\n");
  progress("base directories");
}
