/**
 * The V8 flags a prediction server runs with: its young generation and single-threaded GC.
 * The young generation: A request allocates about 130 KB of
 * short-lived memory (the body, the decoded samples, the features); V8 starts its semi-spaces at
 * 1 MB and grows them only under pressure, so a server collects its young generation every few
 * requests, and each pause lands on some request's latency. A fixed 16 MB semi-space (about
 * 30 MB more per process) collects every ~100 requests instead. On this 2-core machine's bench,
 * runs alternating on the same code (2026-12-02): server CPU per request 3.46-3.89 ms against
 * 3.70-4.06 without, `capacity_efficiency` 0.69-0.78 against 0.62-0.65, p99 at 60% load
 * 1.8-2.8x the single request against 2.7-3.3x. The flag is V8's, so it has to be on the node
 * command line: `serve --workers` forks its workers with it, and the image's CMD passes it to
 * the lone server (Node refuses it in NODE_OPTIONS).
 */
export const YOUNG_GENERATION_FLAG = '--min-semi-space-size=16';

/**
 * Garbage collection on each isolate's own thread. V8's helper threads are the process's, at
 * normal priority, and they collect the shadow worker's heap too: with a candidate that
 * allocates heavily (the bench's slow one, 76 ms of CPU per prediction) they took about 0.28 of
 * a core per serving process while the shadow thread itself ran at nice 19, and the answered
 * requests' p50 at 60% load rose to 8-47x the baseline (2026-12-06). Collected on the shadow
 * thread, that work is nice 19 too: 1.7x in the run with this flag, capacity unchanged (0.83).
 */
export const SINGLE_THREADED_GC_FLAG = '--single-threaded-gc';

/** The V8 flags a prediction server runs with, in the image's CMD order. */
export const SERVER_V8_FLAGS = [YOUNG_GENERATION_FLAG, SINGLE_THREADED_GC_FLAG] as const;

/**
 * The node arguments a server worker starts with: the parent's, plus the young generation unless
 * the user chose semi-space sizes themselves, and single-threaded GC unless they chose how GC
 * threads run (theirs win).
 */
export function serverExecArgv(execArgv: readonly string[]): string[] {
  const out = [...execArgv];
  if (!execArgv.some((a) => /^--(min|max)[-_]semi[-_]space[-_]size\b/.test(a)))
    out.push(YOUNG_GENERATION_FLAG);
  if (!execArgv.some((a) => /^--(no[-_])?single[-_]threaded([-_]gc)?$/.test(a)))
    out.push(SINGLE_THREADED_GC_FLAG);
  return out;
}
