/**
 * Progress for long operations (hashing, transfers): a cli-progress bar when stderr is a TTY,
 * otherwise a plain line at most every few seconds so CI logs show the job is alive.
 */
import cliProgress from 'cli-progress';
import type { Output } from './output.ts';

export interface Progress {
  /** Marks `n` more units done. */
  tick(n?: number): void;
  /** Ends the bar (or prints a final line when anything was reported). */
  stop(): void;
}

export interface ProgressOptions {
  /** Milliseconds between plain lines when not on a TTY (default 2000). */
  intervalMs?: number;
  /** Unit shown in plain lines (default "files"). */
  unit?: string;
}

/** Starts progress for `total` units of `label` work, written to `out.err`. */
export function createProgress(
  out: Output,
  label: string,
  total: number,
  options: ProgressOptions = {},
): Progress {
  const unit = options.unit ?? 'files';
  let done = 0;
  if (out.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format: `${label} [{bar}] {value}/{total} ${unit} {percentage}% eta {eta}s`, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    bar.start(total, 0);
    return {
      tick(n = 1) {
        done += n;
        bar.update(done);
      },
      stop() {
        bar.stop();
      },
    };
  }
  const interval = options.intervalMs ?? 2000;
  let last = Date.now();
  let printed: string | undefined;
  const line = () => `${label}: ${done}/${total} ${unit} (${Math.floor((done / total) * 100)}%)`;
  return {
    tick(n = 1) {
      done += n;
      const now = Date.now();
      if (now - last >= interval) {
        last = now;
        printed = line();
        out.err(printed);
      }
    },
    stop() {
      if (printed !== undefined && printed !== line()) out.err(line());
    },
  };
}
