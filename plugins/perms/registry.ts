// The permission registry this plugin owns: each permission plugin registers its name, the
// bit it is stored at (0–14 are upstream's) and where its operations go among the others.
// A permission is one folder listed in a bundle; a taken name or bit is refused at start-up.
import { isIdentifier } from "../../core/cli.ts";
import { FimError } from "../../core/errors.ts";
import { hooksOf } from "../../core/hooks.ts";

export interface PermissionSpec {
  /** As `fim-perms` takes it, e.g. `dbus_user`. */
  name: string;
  /** Bit of the stored u64 (reference §4.3 for upstream's; third-party ones pick a free one). */
  bit: number;
  /** Place of its operations among the permissions' (lower first; upstream's order for upstream's). */
  order: number;
  /** Host directories it shows at their own path (named in the hint for a working directory the guest cannot see). */
  shows?: () => string[];
}

export const permissionHooks = hooksOf(() => ({ permissions: new Map<string, PermissionSpec>() }));

const BITS = 64;

export function registerPermission(runtime: object, plugin: string, spec: PermissionSpec): void {
  const { permissions } = permissionHooks(runtime);
  if (!isIdentifier(spec.name, "lower") || spec.name === "all" || spec.name === "none") {
    throw new FimError(`Permission plugin '${plugin}' registers an invalid name '${spec.name}'`, { level: "C" });
  }
  if (!Number.isInteger(spec.bit) || spec.bit < 0 || spec.bit >= BITS) {
    throw new FimError(`Permission plugin '${plugin}' registers '${spec.name}' at bit ${spec.bit}: bits are 0 to ${BITS - 1}`, { level: "C" });
  }
  for (const known of permissions.values()) {
    if (known.name === spec.name) throw new FimError(`Permission plugin '${plugin}' registers '${spec.name}', which is already registered`, { level: "C" });
    if (known.bit === spec.bit) {
      throw new FimError(`Permission plugin '${plugin}' registers '${spec.name}' at bit ${spec.bit}, which '${known.name}' already uses: pick a free bit`, { level: "C" });
    }
  }
  permissions.set(spec.name, spec);
}

/** What each registered permission shows at its own path, by name (those that show directories). */
export function directoriesShown(runtime: object): Record<string, string[]> {
  const shown: Record<string, string[]> = {};
  for (const spec of permissionHooks(runtime).permissions.values()) {
    const dirs = spec.shows?.() ?? [];
    if (dirs.length > 0) shown[spec.name] = dirs;
  }
  return shown;
}

/** Names indexed by bit ("" for a free bit), as the stored bit-field reads them. */
export function namesByBit(runtime: object): string[] {
  const { permissions } = permissionHooks(runtime);
  const names: string[] = [];
  for (const spec of permissions.values()) names[spec.bit] = spec.name;
  return Array.from(names, (name) => name ?? "");
}
