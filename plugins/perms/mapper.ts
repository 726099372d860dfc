// A permission plugin: registers the permission and, when the image grants it, adds its
// sandbox operations (reference §9.3). Each permission has its own plugin folder.
import { SANDBOX_STAGE, type Launch, type SandboxOp } from "../../core/launch.ts";
import type { Logger } from "../../core/log.ts";
import { runtimeDir } from "../../core/paths.ts";
import type { Plugin } from "../../core/plugin.ts";
import type { Runtime } from "../../core/runtime.ts";
import { registerPermission, type PermissionSpec } from "./registry.ts";

export interface MapperContext {
  runtime: Runtime;
  log: Logger;
  launch: Launch;
  /** $XDG_RUNTIME_DIR or /run/user/<uid>. */
  xdg: string;
}

export interface MapperOptions {
  /** Operations when the permission is NOT granted (e.g. network's own namespace). */
  denied?: (context: MapperContext) => SandboxOp[];
  /** Taps further hooks of the runtime (e.g. gpu's per-run layer). */
  extra?: (runtime: Runtime) => void;
}

export function permissionMapper(spec: PermissionSpec, map: (context: MapperContext) => SandboxOp[], options: MapperOptions = {}): Plugin {
  const name = `perm-${spec.name.replaceAll("_", "-")}`;
  return {
    name,
    requires: ["perms"],
    apply(runtime) {
      registerPermission(runtime, name, spec);
      const log = runtime.logger(name);
      runtime.hooks.sandbox.tapPromise({ name, stage: SANDBOX_STAGE.permissions + spec.order }, async (operations, launch) => {
        const context = { runtime, log, launch, xdg: runtimeDir() };
        if (!launch.facts.permissions.has(spec.name)) return options.denied ? [...operations, ...options.denied(context)] : operations;
        log.debug(`PERM(${spec.name.toUpperCase()})`);
        return [...operations, ...map(context)];
      });
      options.extra?.(runtime);
    },
  };
}
