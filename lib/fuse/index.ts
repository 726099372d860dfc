// A FUSE server library speaking the kernel protocol on /dev/fuse (no libfuse): the request
// loop, the two ways to mount, and the C calls a passthrough filesystem needs.
export { Session, SetattrValid, type Caller, type DirEntry, type Entry, type Filesystem, type Setattr } from "./session.ts";
export { mountDirect, mountWithFusermount, type Mounted, type MountOptions } from "./mount.ts";
export type { Stat, StatFs } from "./libc.ts";
