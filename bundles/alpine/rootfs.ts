// alpine's root filesystem: the official minirootfs tarball (reference §17.2: alpine-base,
// repositories v3.22 main and community).
import { existsSync, writeFileSync } from "node:fs";
import { baseTree, extract, fetchTarball, tarballKey, tarballSource } from "../tarball.ts";

const OFFICIAL = "https://dl-cdn.alpinelinux.org/alpine/v3.22/releases/x86_64/alpine-minirootfs-3.22.2-x86_64.tar.gz";

export const cacheKey = () => tarballKey(OFFICIAL);

export async function bootstrap(dir: string, progress: (text: string) => void): Promise<void> {
  const tarball = await fetchTarball(tarballSource(OFFICIAL), `${dir}/..`, progress);
  progress(`extracting ${tarball}`);
  await extract(tarball, dir);
  if (!existsSync(`${dir}/etc/alpine-release`)) throw new Error(`step 'check': '${tarball}' is not an Alpine root filesystem (no /etc/alpine-release)`);
  writeFileSync(`${dir}/etc/apk/repositories`, "https://dl-cdn.alpinelinux.org/alpine/v3.22/main\nhttps://dl-cdn.alpinelinux.org/alpine/v3.22/community\n");
  baseTree(dir);
}
