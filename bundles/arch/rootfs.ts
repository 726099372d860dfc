// arch's root filesystem: the official bootstrap tarball (its tree is under root.x86_64/),
// with a mirror and the multilib repository enabled (reference §17.2).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { baseTree, extract, fetchTarball, tarballKey, tarballSource } from "../tarball.ts";

const OFFICIAL = "https://geo.mirror.pkgbuild.com/iso/latest/archlinux-bootstrap-x86_64.tar.zst";

export const cacheKey = () => tarballKey(OFFICIAL);

export async function bootstrap(dir: string, progress: (text: string) => void): Promise<void> {
  const tarball = await fetchTarball(tarballSource(OFFICIAL), `${dir}/..`, progress);
  progress(`extracting ${tarball}`);
  await extract(tarball, dir, ["--strip-components=1"]);
  if (!existsSync(`${dir}/etc/arch-release`)) throw new Error(`step 'check': '${tarball}' is not an Arch Linux bootstrap tree (no root.x86_64/etc/arch-release)`);
  writeFileSync(`${dir}/etc/pacman.d/mirrorlist`, "Server = https://geo.mirror.pkgbuild.com/$repo/os/$arch\n");
  const conf = `${dir}/etc/pacman.conf`;
  if (existsSync(conf)) writeFileSync(conf, readFileSync(conf, "utf8").replace(/^#\[multilib\]\n#Include/m, "[multilib]\nInclude"));
  writeFileSync(`${dir}/etc/locale.gen`, "en_US.UTF-8 UTF-8\n");
  writeFileSync(`${dir}/etc/locale.conf`, "LANG=en_US.UTF-8\n");
  baseTree(dir);
}
