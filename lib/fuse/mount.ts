// Two ways to get a mounted /dev/fuse descriptor without libfuse:
// - mount(2), for a process that is root in its own user and mount namespace (the run's
//   namespace): nothing needs setuid, and the mount vanishes with the namespace;
// - the setuid fusermount3, which mounts and passes the descriptor back over a socket
//   (_FUSE_COMMFD, SCM_RIGHTS), for a regular user on the host.
import { closeSync, openSync } from "../fs.ts";
import * as libc from "./libc.ts";

export interface MountOptions {
  /** Shown as the source in /proc/mounts. */
  source: string;
  /** The `fuse.<subtype>` type name. */
  subtype: string;
  /** Let other users (and nested user namespaces' users) in; fusermount3 needs user_allow_other for it. */
  allowOther?: boolean;
}

export interface Mounted {
  fd: number;
  /** Undoes the mount; the server's loop then ends. */
  unmount(): void;
}

const S_IFDIR = 0o040000;

/** mount(2) in the current namespace (needs CAP_SYS_ADMIN there). */
export function mountDirect(mountpoint: string, options: MountOptions): Mounted {
  const fd = openSync("/dev/fuse", "r+");
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const data = [`fd=${fd}`, `rootmode=${S_IFDIR.toString(8)}`, `user_id=${uid}`, `group_id=${gid}`, "default_permissions", ...(options.allowOther ? ["allow_other"] : [])];
  try {
    libc.mount(options.source, mountpoint, `fuse.${options.subtype}`, libc.MS_NOSUID | libc.MS_NODEV, data.join(","));
  } catch (code) {
    closeSync(fd);
    throw new Error(`mount of ${mountpoint} failed: ${libc.errnoName(code as number)}${code === 1 ? " (not root in this namespace)" : ""}`);
  }
  return {
    fd,
    unmount: () => {
      try {
        libc.umount2(mountpoint, libc.MNT_DETACH);
      } catch {
        // already gone
      }
    },
  };
}

/** Mounts through the setuid fusermount3 found at `fusermount`. */
export async function mountWithFusermount(mountpoint: string, options: MountOptions, fusermount = "fusermount3"): Promise<Mounted> {
  const [ours, theirs] = libc.socketPair();
  const opts = ["rw", "nosuid", "nodev", `fsname=${options.source}`, `subtype=${options.subtype}`, "default_permissions", ...(options.allowOther ? ["allow_other"] : [])];
  const child = Bun.spawn([fusermount, "-o", opts.join(","), "--", mountpoint], {
    env: { ...process.env, _FUSE_COMMFD: "3" },
    stdio: ["ignore", "ignore", "pipe", theirs],
  });
  // Our copy of their end must go, or a failing fusermount3 never gives us end-of-stream.
  closeSync(theirs);
  let fd: number | undefined;
  try {
    fd = libc.receiveFd(ours);
  } finally {
    closeSync(ours);
  }
  const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
  if (fd === undefined || code !== 0) {
    if (fd !== undefined) closeSync(fd);
    throw new Error(`fusermount3 could not mount ${mountpoint}: ${stderr.trim() || `exit code ${code}`}`);
  }
  return { fd, unmount: () => void Bun.spawnSync([fusermount, "-u", "-z", "--", mountpoint], { stdout: "ignore", stderr: "ignore" }) };
}
