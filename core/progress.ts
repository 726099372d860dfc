// Progress of long work (compressing a layer, erasing what a commit captured, rewriting the
// image). On a terminal: one line on stderr, redrawn in place. Otherwise: a log line now and
// then, so a log shows that the work is alive without filling up; work that ends before the
// first of those lines prints nothing.
import { isTerminal } from "./libc.ts";
import { write } from "./log.ts";

const REDRAW_MS = 200;
/** Between two lines when stderr is not a terminal. */
export const LINE_EVERY_MS = 5000;

export interface ProgressOptions {
  /** Defaults: whether stderr is a terminal, performance.now, and writing to stderr. */
  terminal?: boolean;
  now?: () => number;
  draw?: (text: string) => void;
}

export class Progress {
  private readonly terminal: boolean;
  private readonly now: () => number;
  private readonly output: (text: string) => void;
  private readonly started: number;
  private last: number;
  private lines = 0;
  private timer: ReturnType<typeof setInterval> | undefined;

  /**
   * `describe` says where the work is, e.g. `45% (52.1 of 118.2 MiB read)`; `say` prints a
   * line when stderr is not a terminal (a logger's info).
   */
  constructor(
    private readonly label: string,
    private readonly describe: () => string,
    private readonly say: (line: string) => void,
    options: ProgressOptions = {},
  ) {
    this.terminal = options.terminal ?? isTerminal(2);
    this.now = options.now ?? (() => performance.now());
    this.output = options.draw ?? ((text) => write(2, text));
    this.started = this.last = this.now();
    if (this.terminal) this.draw();
  }

  /** Shows the state when it is time (cheap: call it as often as convenient). */
  tick(): void {
    const now = this.now();
    if (now - this.last < (this.terminal ? REDRAW_MS : LINE_EVERY_MS)) return;
    this.last = now;
    if (this.terminal) this.draw();
    else {
      this.lines++;
      this.say(`${this.label}: ${this.describe()} (${this.elapsed()})`);
    }
  }

  /** Ticks on a timer, for work done by another process. */
  watch(): this {
    this.timer ??= setInterval(() => this.tick(), REDRAW_MS);
    return this;
  }

  /** The final state: redrawn and ended on a terminal, a last line if lines were shown. */
  end(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    if (this.terminal) {
      this.draw();
      this.output("\n");
    } else if (this.lines > 0) this.say(`${this.label}: ${this.describe()} (${this.elapsed()})`);
  }

  private elapsed(): string {
    return `${((this.now() - this.started) / 1000).toFixed(0)} s`;
  }

  private draw(): void {
    this.output(`\r${this.label}: ${this.describe()} (${this.elapsed()})\x1b[K`);
  }
}

export const mib = (bytes: number): string => (bytes / 1048576).toFixed(1);

/** `done` of `total` as a percentage that says 100 only when the work is complete. */
export function percent(done: number, total: number, complete = false): string {
  if (complete) return "100%";
  return `${total > 0 ? Math.min(99, Math.floor((done * 100) / total)) : 0}%`;
}
