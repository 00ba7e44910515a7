/**
 * Following a Vertex AI CustomJob to its end: its state and elapsed time on stderr (and a
 * progress line every 30 s in CI), a hook on every poll (log lines, a trial's epochs), a cancel
 * sent at most once (interrupt, timeout, or the hook's own reason such as pruning), and the
 * stage's `timeout` counted from the job's RUNNING start: time queued for machines (QUEUED,
 * PENDING) is reported but never counted.
 *
 * Polls run every 250 ms for the first 10 s of following (at most 40 of them), then back off to a
 * fifth of the time followed, capped at the poll interval (10 s by default): a job of a few
 * seconds is seen ending within a quarter of a second (at a fifth of its time, a 3 s job waited
 * 0.6 s for its last poll), a long one costs one request per 10 s, and the lag after a job ends
 * stays under ~20% of its time. The brisk polls of the jobs a process follows at once share one
 * rate (tune's parallel trials, stages on Vertex AI side by side): N jobs poll every N x 250 ms
 * each, 4 requests a second in all, well within Vertex AI's per-region quota of read requests.
 * A quota or transient error on a poll (429, 503) ends the brisk polls of that job: it is then
 * polled at least a second apart. Once the job has written its outputs (`ending`), its end is a
 * container exit away: the next ENDING_POLLS polls come ENDING_POLL_MS apart (two seconds at
 * most, then the schedule above goes on), so a short job's end is seen within a tenth of a
 * second instead of up to a quarter. Every interval counts from the poll's answer, not from the
 * end of the hook that follows it.
 */
import type { Output } from '../output.ts';
import {
  jobState,
  TERMINAL_STATES,
  withRetry,
  type CustomJob,
  type JobServiceClient,
} from './jobs-client.ts';

/** First poll interval (ms) and the floor of the back-off. */
export const FIRST_POLL_MS = 250;

/** How long (ms) polls stay at FIRST_POLL_MS before they back off. */
export const BRISK_POLL_MS = 10_000;

/** Shortest wait (ms) between polls of a job once a poll of it was refused (429, 503). */
export const THROTTLED_POLL_MS = 1000;

/** Poll interval (ms) once the job has written its outputs, for at most ENDING_POLLS polls. */
export const ENDING_POLL_MS = 100;
export const ENDING_POLLS = 20;

/** Jobs this process follows now: their brisk polls share one rate. */
let following = 0;

export interface FollowJobOptions {
  /** Head of the status lines (`featurize`, `tune: trial 3`). */
  label: string;
  /** Running seconds before the job is cancelled. */
  timeoutSeconds: number;
  /** Longest wait between polls in ms. */
  pollMs: number;
  /** True when this process created the job: an interrupt then cancels it. */
  owned: boolean;
  signal: AbortSignal;
  out: Output;
  /** Called after every poll with the job as it is now; may call `cancel`. */
  onPoll?: (job: CustomJob, cancel: (why: string) => Promise<void>) => Promise<void>;
  /** True once the job has written its outputs (its end is near): polls then come quicker. */
  ending?: () => boolean;
}

export interface FollowedJob {
  job: CustomJob;
  /** Final state, or the state last seen when an interrupt left a job of another process. */
  state: string;
  /** Why this process cancelled the job (`interrupted`, `timed out ...`, a hook's reason). */
  cancelledFor?: string;
  timedOut: boolean;
  /** Seconds from the job's RUNNING start to its end (or now). */
  runningSeconds: number;
  /** Seconds from creation to RUNNING (or now, when it never ran). */
  queuedSeconds: number;
}

/** Milliseconds since the epoch of a protobuf Timestamp (object or RFC 3339 string). */
export function timestampMs(t: { seconds?: unknown; nanos?: number | null } | string): number {
  if (typeof t === 'string') return Date.parse(t);
  return Number(t.seconds ?? 0) * 1000 + Math.round((t.nanos ?? 0) / 1e6);
}

/** Seconds queued and running of `job` as of `now` (ms). */
export function jobTimes(job: CustomJob, now = Date.now()): { queued: number; running: number } {
  const created = job.createTime ? timestampMs(job.createTime as never) : now;
  const started = job.startTime ? timestampMs(job.startTime as never) : undefined;
  const ended = job.endTime ? timestampMs(job.endTime as never) : now;
  if (started === undefined) return { queued: Math.max(0, (ended - created) / 1000), running: 0 };
  return {
    queued: Math.max(0, (started - created) / 1000),
    running: Math.max(0, (ended - started) / 1000),
  };
}

/**
 * Waits `ms`, or less when `signal` aborts meanwhile: a Ctrl-C during a 10 s poll cancels the
 * job at once (a user who waits 10 s presses Ctrl-C again, which exits without cancelling).
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Follows `first` until it reaches a final state (or an interrupt leaves a job it does not own). */
export async function followJob(
  client: JobServiceClient,
  first: CustomJob,
  o: FollowJobOptions,
): Promise<FollowedJob> {
  const name = first.name!;
  const jobId = name.split('/').pop()!;
  const since = Date.now();
  const ci = process.env.CI === 'true';
  let cancelledFor: string | undefined;
  let timedOut = false;
  let lastProgress = 0;
  let state = '';
  const cancel = async (why: string): Promise<void> => {
    if (cancelledFor !== undefined) return;
    cancelledFor = why;
    o.out.err(`${o.label}: ${why}: cancelling ${name}`);
    await withRetry(() => client.cancelCustomJob({ name })).catch((err: { code?: unknown }) => {
      // It ended between the last poll and the cancel (FAILED_PRECONDITION): nothing to cancel.
      if (err.code !== 9 && err.code !== 400) throw err;
    });
  };
  const minMs = Math.min(FIRST_POLL_MS, o.pollMs);
  let throttled = false;
  let endingPolls = 0;
  let job: CustomJob;
  following++;
  try {
    for (;;) {
      if (o.signal.aborted && o.owned) await cancel('interrupted');
      job = (
        await withRetry(() => client.getCustomJob({ name }), {
          onRetry: () => {
            throttled = true;
          },
        })
      )[0];
      const polledAt = Date.now();
      const now = jobState(job);
      const times = jobTimes(job);
      if (!timedOut && times.running > o.timeoutSeconds && !TERMINAL_STATES.has(now)) {
        timedOut = true;
        await cancel(
          `timed out after ${times.running.toFixed(0)}s running (queued ${times.queued.toFixed(0)}s)`,
        );
      }
      await o.onPoll?.(job, cancel);
      const shown = `${o.label}: ${jobId} ${now.replace('JOB_STATE_', '').toLowerCase()}`;
      const elapsed = ((Date.now() - since) / 1000).toFixed(0);
      if (now !== state) {
        state = now;
        o.out.err(`${shown} (${elapsed} s)`);
      } else if (ci && Date.now() - lastProgress > 30_000) {
        lastProgress = Date.now();
        o.out.err(`${shown}, ${elapsed} s elapsed`);
      }
      if (TERMINAL_STATES.has(state)) break;
      if (o.signal.aborted && !o.owned) break;
      // Once a cancel is sent, its end is followed at the shortest interval.
      const followed = Date.now() - since;
      const floor = throttled ? Math.max(minMs, THROTTLED_POLL_MS) : minMs;
      const ending =
        cancelledFor === undefined && !throttled && endingPolls < ENDING_POLLS && o.ending?.() === true;
      if (ending) endingPolls++;
      const wait =
        cancelledFor !== undefined
          ? Math.min(o.pollMs, 1000)
          : ending
            ? Math.min(o.pollMs, ENDING_POLL_MS)
            : Math.min(
                o.pollMs,
                followed < BRISK_POLL_MS && !throttled ? minMs * following : Math.max(floor, followed / 5),
              );
      await sleep(
        Math.max(0, wait - (Date.now() - polledAt)),
        cancelledFor !== undefined ? undefined : o.signal,
      );
    }
  } finally {
    following--;
  }
  const times = jobTimes(job);
  return {
    job,
    state,
    ...(cancelledFor !== undefined ? { cancelledFor } : {}),
    timedOut,
    runningSeconds: times.running,
    queuedSeconds: times.queued,
  };
}
