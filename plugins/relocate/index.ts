// Relocation (reference §1, §7.5) is the boot stub's job (toolset/src/fim_stub.c): it
// extracts the launcher and the glibc it runs on into the build's runtime directory and
// starts it there, so the image file is never executing while it is written (ETXTBSY). What
// it hands over arrives in the environment: the image (FIM_BIN_SELF), the build's directory
// (FIM_DIR_APP), the descriptor of the build's lock (FIM_BOOT_LOCK_FD: held shared by every
// process of the build, so that a sweep never removes one in use), the host's LD_PRELOAD
// and LD_AUDIT (set aside for our glibc, given back to the guest) and the engine settings
// made for this process alone (FIM_BOOT_ENGINE).
import { isDigits } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { Image } from "../../core/image.ts";
import { SANDBOX_STAGE } from "../../core/launch.ts";
import { keepAcrossExec } from "../../core/libc.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { sweepBuilds } from "../runtime-dir/store.ts";

const NAME = "relocate";
const ENGINE_PREFIX = "BUN_JSC_";

/** What the stub handed over, read once (and removed from the environment children see). */
export interface BootFacts {
  /** Descriptor of the build's lock, inherited from the stub; undefined without a stub. */
  lockFd: number | undefined;
  /** Whether the stub extracted the build for this start (its first). */
  extracted: boolean;
  /** The host's LD_PRELOAD, when it was set. */
  hostPreload: string | undefined;
  /** The host's LD_AUDIT, when it was set. */
  hostAudit: string | undefined;
}

const facts = new WeakMap<Runtime, BootFacts>();

export function bootFacts(runtime: Runtime): BootFacts {
  return facts.get(runtime) ?? { lockFd: undefined, extracted: false, hostPreload: undefined, hostAudit: undefined };
}

function takeFacts(env: NodeJS.ProcessEnv): BootFacts {
  const fd = env.FIM_BOOT_LOCK_FD !== undefined && isDigits(env.FIM_BOOT_LOCK_FD) ? Number(env.FIM_BOOT_LOCK_FD) : undefined;
  const result = { lockFd: fd, extracted: env.FIM_BOOT_EXTRACTED === "1", hostPreload: env.FIM_HOST_LD_PRELOAD, hostAudit: env.FIM_HOST_LD_AUDIT };
  delete env.FIM_BOOT_LOCK_FD;
  delete env.FIM_BOOT_EXTRACTED;
  // The engine settings the stub made for this process alone (fim_stub.c, tune_engine).
  for (const name of env.FIM_BOOT_ENGINE?.split(",") ?? []) if (name.startsWith(ENGINE_PREFIX) && name.length > ENGINE_PREFIX.length) delete env[name];
  delete env.FIM_BOOT_ENGINE;
  delete env.FIM_HOST_LD_PRELOAD;
  delete env.FIM_HOST_LD_AUDIT;
  return result;
}

/**
 * The command that runs this launcher again (helper processes: the union filesystem's
 * server), through the bundled loader like the stub does: never the image file, which must
 * stay writable, and never the host's glibc.
 */
export function selfCommand(runtime: Runtime): string[] {
  const { boot } = runtime.image.header;
  const { app } = runtime.paths;
  return [`${app}/${boot.loader}`, "--library-path", `${app}/${boot.library}`, `${app}/${boot.launcher}`];
}

export const relocatePlugin: Plugin = {
  name: NAME,
  apply(runtime) {
    // Nothing is logged here but sweeps: the stub traces relocation, and a helper started
    // through selfCommand (the union filesystem's server) answers on its stdout.
    runtime.hooks.relocate.tapPromise(NAME, async () => {
      const boot = takeFacts(process.env);
      facts.set(runtime, boot);
      const self = process.env.FIM_BIN_SELF;
      if (!self) {
        throw new FimError("Could not read variable 'FIM_BIN_SELF'", { level: "E" }).context(
          "This is a bare launcher without an image: run an image file (e.g. dist/<bundle>.flatimage) instead",
          "C",
        );
      }
      let image: Image;
      try {
        image = Image.open(self);
      } catch (error) {
        throw (error as FimError).context("Could not read the image file", "C");
      }
      // A new build was just extracted: the old ones beyond the few most recent go.
      const app = process.env.FIM_DIR_APP;
      if (boot.extracted && app?.endsWith(`/${image.header.buildId}`)) {
        try {
          for (const removed of sweepBuilds(app)) runtime.logger(NAME).debug(`Removed the old build '${removed}'`);
        } catch (error) {
          runtime.logger(NAME).debug(`Could not sweep old builds: ${(error as Error).message}`);
        }
      }
      return image;
    });

    // The run's supervisor (the launcher's process after execve) keeps the build's lock
    // until the run ends; the processes it starts do not inherit it. (Bun makes inherited
    // descriptors close-on-exec.)
    runtime.hooks.mount.tapPromise(NAME, async (launch) => {
      const { lockFd } = bootFacts(runtime);
      if (lockFd === undefined) return;
      keepAcrossExec(lockFd);
      launch.heldFds.push(lockFd);
    });

    runtime.hooks.sandbox.tapPromise({ name: NAME, stage: SANDBOX_STAGE.environment }, async (operations) => {
      const { hostPreload, hostAudit } = bootFacts(runtime);
      const given = [
        ...(hostPreload === undefined ? [] : [{ op: "setenv" as const, name: "LD_PRELOAD", value: hostPreload }]),
        ...(hostAudit === undefined ? [] : [{ op: "setenv" as const, name: "LD_AUDIT", value: hostAudit }]),
      ];
      return [...operations, ...given];
    });
  },
};
