/**
 * How the Vertex AI endpoint calls the service: a call the service rejected as unavailable is
 * retried with backoff, a long-running operation is awaited with a timeout, and any client error
 * becomes one lockstep error line that names the call and the fix.
 */
import { LockstepError } from '../errors.ts';
import type { Output } from '../output.ts';

export interface VertexCallOptions {
  /** Longest wait for one long-running operation (default 30 min: deployments take minutes). */
  operationTimeoutMs?: number;
  /** Delay before the first poll of an operation (default 1000 ms). */
  pollInitialMs?: number;
  /** Retries of a call the service rejected as unavailable (default 3). */
  retries?: number;
  /** First retry delay (default 1000 ms, doubling). */
  retryDelayMs?: number;
  out?: Output;
}

// Status codes safe to retry for calls that start operations (the request was not accepted):
// gRPC codes, and the HTTP codes the REST transport reports instead.
const RETRYABLE = new Set([8 /* RESOURCE_EXHAUSTED */, 14 /* UNAVAILABLE */, 429, 503]);

/** True when the service answered NOT_FOUND (gRPC 5, HTTP 404). */
export const isNotFound = (err: unknown) => [5, 404].includes((err as { code?: number }).code ?? -1);

/** A client error as a one-line lockstep error naming the call (lockstep errors pass through). */
export function wrapVertexError(what: string, err: unknown): LockstepError {
  if (err instanceof LockstepError) return err;
  const msg = (err as Error).message?.split('\n')[0] ?? String(err);
  return new LockstepError(
    `vertex ${what}: ${msg}. Check the endpoint in promotion/<env>.yaml and your Google Cloud permissions.`,
    { cause: err },
  );
}

/** Runs `fn`, retrying it when the service answered UNAVAILABLE / RESOURCE_EXHAUSTED. */
export async function retryVertexCall<T>(
  options: VertexCallOptions,
  what: string,
  fn: () => Promise<T>,
): Promise<T> {
  const retries = options.retries ?? 3;
  let delay = options.retryDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: number }).code;
      if (attempt >= retries || code === undefined || !RETRYABLE.has(code)) throw wrapVertexError(what, err);
      options.out?.err(`vertex: ${what}: ${(err as Error).message.split('\n')[0]}; retrying in ${delay} ms`);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** Starts a long-running operation and waits for its result, bounded by the timeout. */
export async function awaitVertexOperation<T>(
  options: VertexCallOptions,
  what: string,
  start: (callOptions: Record<string, unknown>) => Promise<unknown>,
): Promise<T> {
  const timeoutMs = options.operationTimeoutMs ?? 30 * 60_000;
  const callOptions = {
    longrunning: {
      initialRetryDelayMillis: options.pollInitialMs ?? 1000,
      retryDelayMultiplier: 1.5,
      maxRetryDelayMillis: 30_000,
      totalTimeoutMillis: timeoutMs,
    },
  };
  const [op] = (await retryVertexCall(options, what, () => start(callOptions))) as [
    { name?: string; promise(): Promise<[T]> },
  ];
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new LockstepError(
            `vertex ${what}: operation ${op.name} did not finish within ${Math.round(timeoutMs / 1000)} s. Check it in the console and re-run.`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    const [result] = await Promise.race([op.promise(), timeout]);
    return result;
  } catch (err) {
    throw wrapVertexError(`${what} (operation ${op.name})`, err);
  } finally {
    clearTimeout(timer);
  }
}
