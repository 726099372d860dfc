// shm: the host's /dev/shm (shared memory with host processes).
import { permissionMapper } from "../perms/index.ts";

export const shmPermission = permissionMapper({ name: "shm", bit: 13, order: 12 }, () => [{ op: "bind", mode: "dev", source: "/dev/shm", dest: "/dev/shm", optional: true }]);
