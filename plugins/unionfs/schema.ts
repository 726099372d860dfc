// What a run asks of the union filesystem's process (one JSON argument).
import * as v from "valibot";
import { lazy } from "../../core/lazy.ts";

export const ServeRequestSchema = lazy(() =>
  v.object({
  mountpoint: v.string(),
  upper: v.string(),
  lowers: v.array(v.string()),
  work: v.optional(v.string()),
  casefold: v.boolean(),
  /** "namespace": mount(2) (root in a user namespace); "fusermount": the setuid helper. */
  mount: v.picklist(["namespace", "fusermount"]),
  fusermount: v.optional(v.string()),
  /** fusermount mode: fim_supervise, whose janitor mode unmounts when this process ends. */
  janitor: v.optional(v.string()),
  /** Seconds the kernel caches names and attributes. */
  ttl: v.number(),
  }),
);
export type ServeRequest = v.InferOutput<ReturnType<typeof ServeRequestSchema>>;
