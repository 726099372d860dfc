// Downloads in-process with fetch: an idle timeout (FIM_RECIPE_TIMEOUT), a size limit, and
// progress on a terminal. The bytes stay in memory: the caller validates them before
// anything reaches the cache.
import * as v from "valibot";
import { FimError } from "../../core/errors.ts";
import { isTerminal } from "../../core/libc.ts";
import { write } from "../../core/log.ts";

/** Seconds without any data before a download is abandoned. */
const DEFAULT_TIMEOUT = 30;
/** Recipes are small JSON files; anything bigger is not one. */
export const SIZE_LIMIT = 1024 * 1024;

const Seconds = v.pipe(v.string(), v.transform(Number), v.number(), v.minValue(0.001), v.maxValue(86_400));

/** The idle timeout in ms, from FIM_RECIPE_TIMEOUT (seconds). */
export function timeoutMs(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.FIM_RECIPE_TIMEOUT;
  if (raw === undefined || raw === "") return DEFAULT_TIMEOUT * 1000;
  const parsed = v.safeParse(Seconds, raw);
  if (!parsed.success) throw new FimError(`Invalid FIM_RECIPE_TIMEOUT '${raw}': expected a number of seconds between 0.001 and 86400`);
  return parsed.output * 1000;
}

const size = (bytes: number) => (bytes < 1024 ? `${bytes} B` : `${(bytes / 1024).toFixed(1)} KiB`);

/** One progress line on stderr, rewritten in place; nothing when stderr is not a terminal. */
function progress(label: string) {
  if (!isTerminal(2)) return { update() {}, end() {}, abandon() {} };
  let shown = 0;
  const show = (received: number, total: number | undefined) =>
    write(2, `\r${label}: ${size(received)}${total ? ` of ${size(total)} (${Math.floor((received * 100) / total)}%)` : ""}\x1b[K`);
  return {
    /** Ends a line left half-drawn by a failed download. */
    abandon() {
      if (shown > 0) write(2, "\n");
    },
    update(received: number, total: number | undefined) {
      const now = performance.now();
      if (now - shown < 100) return;
      shown = now;
      show(received, total);
    },
    end(received: number, total: number | undefined) {
      show(received, total);
      write(2, "\n");
    },
  };
}

/** GETs `url`; fails with the reason (HTTP status, timeout, size, network error). */
export async function download(url: string, label: string, timeout = timeoutMs()): Promise<Uint8Array> {
  if (!/^https?:\/\//i.test(url)) throw new FimError(`Unsupported URL '${url}': the remote must be an http:// or https:// URL`);
  const controller = new AbortController();
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  // Reset on every chunk: a slow but moving download is not a timeout; a silent server is.
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, timeout);
  };
  const bar = progress(label);
  let received = 0;
  let total: number | undefined;
  try {
    arm();
    const response = await fetch(url, { signal: controller.signal, redirect: "follow" });
    if (!response.ok) throw new FimError(`HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`);
    total = Number(response.headers.get("content-length")) || undefined;
    if (total !== undefined && total > SIZE_LIMIT) throw new FimError(`the file is larger than ${size(SIZE_LIMIT)} (${total} bytes)`);
    const chunks: Uint8Array[] = [];
    if (response.body) {
      for await (const chunk of response.body) {
        arm();
        received += chunk.byteLength;
        if (received > SIZE_LIMIT) throw new FimError(`the file is larger than ${size(SIZE_LIMIT)}`);
        chunks.push(chunk);
        bar.update(received, total);
      }
    }
    bar.end(received, total);
    return Buffer.concat(chunks);
  } catch (error) {
    bar.abandon();
    if (timedOut) throw new FimError(`no data for ${timeout / 1000} s (timeout set by FIM_RECIPE_TIMEOUT)`);
    if (error instanceof FimError) throw error;
    throw new FimError((error as Error).message ?? String(error));
  } finally {
    clearTimeout(timer);
  }
}
