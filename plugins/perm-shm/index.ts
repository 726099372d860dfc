// shm: shared memory with host processes: the host's /dev/shm and its System V IPC. Without
// it the guest has an IPC namespace of its own: the host's System V shared memory segments,
// semaphores and message queues (X11's MIT-SHM uses them) are out of its reach.
import { permissionMapper } from "../perms/index.ts";

export const shmPermission = permissionMapper(
  { name: "shm", bit: 13, order: 12 },
  () => [{ op: "bind", mode: "dev", source: "/dev/shm", dest: "/dev/shm", optional: true }],
  { denied: () => [{ op: "unshare", namespace: "ipc" }] },
);
