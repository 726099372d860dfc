// The union filesystem's process: mounts, says "ready" on stdout, then serves until the
// mount goes away. Started by the run inside its namespace (mount(2), gone with the
// namespace), or on the host through fusermount3 with a janitor that unmounts when this
// process ends in any way, SIGKILL included (unprivileged auto_unmount does not work).
import { closeSync, writeSync } from "../../lib/fs.ts";
import { mountDirect, mountWithFusermount, Session, type Mounted } from "../../lib/fuse/index.ts";
import type { ServeRequest } from "./schema.ts";
import { UnionFs } from "./union.ts";

export async function serve(request: ServeRequest): Promise<number> {
  // Modes come from the kernel already masked by the caller's umask.
  process.umask(0);
  const fs = new UnionFs(request);
  const options = { source: "fim-unionfs", subtype: request.casefold ? "fim-casefold" : "fim-unionfs", allowOther: request.mount === "namespace" };
  let mounted: Mounted;
  if (request.mount === "namespace") mounted = mountDirect(request.mountpoint, options);
  else {
    if (!request.janitor) throw new Error("a fusermount mount needs 'janitor' (the path of fim_supervise)");
    mounted = await mountWithFusermount(request.mountpoint, options, request.fusermount);
    const fusermount = request.fusermount ?? "fusermount3";
    // The janitor's stdin is a pipe only we hold: it reads end-of-file when we end, in any way.
    Bun.spawn([request.janitor, "--janitor", "0", request.mountpoint, fusermount, "-u", "-z", "--", request.mountpoint], { stdin: "pipe", stdout: "ignore", stderr: "ignore" });
  }
  writeSync(1, "ready\n");
  try {
    new Session(mounted.fd, fs, { ttl: request.ttl }).loop();
  } finally {
    closeSync(mounted.fd);
  }
  return 0;
}
