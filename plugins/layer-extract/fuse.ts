// Whether FUSE can be used here: /dev/fuse must be the FUSE device (character device 10:229;
// containers often bind /dev/null there) and open for reading and writing. FIM_NO_FUSE=1
// says not to use it.
import { closeSync, openSync, statSync } from "../../lib/fs.ts";
import type { Runtime } from "../../core/runtime.ts";

export interface FuseStatus {
  usable: boolean;
  /** Why not, when it is not usable. */
  why: string;
}

const FUSE_MAJOR = 10;
const FUSE_MINOR = 229;

/** glibc's encoding of a device number. */
export function deviceNumbers(rdev: number): [major: number, minor: number] {
  const n = BigInt(rdev);
  return [Number(((n >> 8n) & 0xfffn) | ((n >> 32n) & ~0xfffn)), Number((n & 0xffn) | ((n >> 12n) & ~0xffn))];
}

export function probeFuse(path = "/dev/fuse", env: NodeJS.ProcessEnv = process.env): FuseStatus {
  if (env.FIM_NO_FUSE === "1") return { usable: false, why: "FIM_NO_FUSE=1 says not to use it" };
  let info;
  try {
    info = statSync(path);
  } catch {
    return { usable: false, why: `${path} does not exist` };
  }
  const [major, minor] = deviceNumbers(info.rdev);
  if (!info.isCharacterDevice() || major !== FUSE_MAJOR || minor !== FUSE_MINOR) {
    const what = info.isCharacterDevice() ? `character device ${major}:${minor}` : info.isBlockDevice() ? `block device ${major}:${minor}` : "not a device";
    return { usable: false, why: `${path} is not the FUSE device (${what}, not character device ${FUSE_MAJOR}:${FUSE_MINOR}; bound to /dev/null?)` };
  }
  try {
    closeSync(openSync(path, "r+"));
  } catch (error) {
    return { usable: false, why: `${path} cannot be opened by this user (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})` };
  }
  return { usable: true, why: "" };
}

const status = new WeakMap<Runtime, FuseStatus>();

/** Whether this run can use FUSE; decided once per run (the overlay plugin asks too). */
export function fuseStatus(runtime: Runtime): FuseStatus {
  let known = status.get(runtime);
  if (!known) status.set(runtime, (known = probeFuse()));
  return known;
}
