// shm: the host's /dev/shm (shared memory with host processes).
import { permissionMapper } from "../perms/index.ts";

export const shmPermission = permissionMapper("shm", () => [["--dev-bind-try", "/dev/shm", "/dev/shm"]]);
