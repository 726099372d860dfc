// blueprint's root filesystem (reference §17.2): the directories and empty files that the
// sandbox binds over, and /fim/config. Programs come from the runtime's own bash and busybox.
import { mkdirSync, writeFileSync } from "node:fs";

export async function bootstrap(dir: string, progress: (text: string) => void): Promise<void> {
  for (const path of ["fim/config", "tmp", "proc", "sys", "dev", "run/media", "mnt", "media", "home", "etc", "root"]) {
    mkdirSync(`${dir}/${path}`, { recursive: true });
  }
  for (const file of ["host.conf", "hosts", "passwd", "group", "nsswitch.conf", "resolv.conf"]) writeFileSync(`${dir}/etc/${file}`, "");
  progress("base directories");
}
