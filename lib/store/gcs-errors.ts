/**
 * `gs://` URL parsing and the translation of Google Cloud Storage client errors into one-line
 * lockstep errors. Nothing here ever echoes a credential: URLs with user info or query strings
 * are refused without repeating them, and client messages are scrubbed of tokens before use.
 */
import { ConfigError, IntegrityError, LockstepError, formatProblem } from '../errors.ts';

export interface GsLocation {
  bucket: string;
  /** Object-name prefix without leading or trailing slash; '' for the bucket root. */
  prefix: string;
  /** Normalised `gs://bucket[/prefix]`. */
  url: string;
}

const BUCKET_NAME = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;

/** Parses `gs://bucket[/prefix]`; throws a ConfigError naming `where` (e.g. `.lockstep/config.yaml: remote`). */
export function parseGsUrl(raw: string, where = 'remote'): GsLocation {
  const match = /^gs:\/\/([^/?#]*)(\/[^?#]*)?$/.exec(raw.trim());
  if (!match) {
    // A query, fragment or user info may carry a token: say what is wrong without echoing it.
    const shown = /[@?#]/.test(raw) ? '<redacted>' : raw;
    throw new ConfigError(
      formatProblem(
        where,
        'not a gs:// URL',
        shown,
        'Write it as gs://bucket/prefix, with no user info, query or fragment; credentials come from Application Default Credentials.',
      ),
    );
  }
  const bucket = match[1];
  if (bucket.includes('@') || bucket.includes(':')) {
    throw new ConfigError(
      formatProblem(
        where,
        'gs:// URL holds user info or a port',
        '<redacted>',
        'Remove it: credentials come from Application Default Credentials, never from the URL.',
      ),
    );
  }
  if (!BUCKET_NAME.test(bucket)) {
    throw new ConfigError(
      formatProblem(
        where,
        'invalid bucket name',
        bucket,
        'Use 3-63 lower-case letters, digits, dots, dashes or underscores.',
      ),
    );
  }
  const prefix = (match[2] ?? '').replace(/^\/+|\/+$/g, '').replace(/\/{2,}/g, '/');
  return { bucket, prefix, url: prefix ? `gs://${bucket}/${prefix}` : `gs://${bucket}` };
}

const SECRET_PATTERNS: [RegExp, string][] = [
  [/\bBearer\s+[\w.~+/=-]+/gi, 'Bearer <redacted>'],
  [/\bya29\.[\w.~+/=-]+/g, '<redacted>'],
  [
    /\b(access_token|refresh_token|id_token|token|key|sig|signature|X-Goog-Signature|X-Goog-Credential|upload_id)=[^&\s"']+/gi,
    '$1=<redacted>',
  ],
  [
    /"(private_key|private_key_id|client_secret|refresh_token|access_token|id_token)"\s*:\s*"[^"]*"/g,
    '"$1":"<redacted>"',
  ],
  [/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g, '<redacted>'],
];

/** Removes bearer tokens, signed-URL parameters and key material from a message. */
export function redactSecrets(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) out = out.replace(pattern, replacement);
  return out;
}

/** HTTP status of a client error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; status?: unknown; response?: { status?: unknown } };
  for (const v of [e.code, e.status, e.response?.status]) {
    if (typeof v === 'number' && v >= 100 && v < 600) return v;
    if (typeof v === 'string' && /^\d{3}$/.test(v)) return Number(v);
  }
  return undefined;
}

function firstLine(err: unknown): string {
  let text = err instanceof Error ? err.message : String(err);
  // Streamed downloads report the raw JSON error body: keep only its message.
  try {
    const body = JSON.parse(text) as { error?: { message?: unknown } };
    if (typeof body.error?.message === 'string') text = body.error.message;
  } catch {
    /* not JSON */
  }
  const line = text.split('\n').find((l) => l.trim() !== '') ?? text;
  const clean = redactSecrets(line.trim());
  return clean.length > 200 ? `${clean.slice(0, 197)}...` : clean;
}

/** True for errors worth retrying: 408, 429, 5xx and dropped connections. */
export function isTransient(err: unknown): boolean {
  const status = statusOf(err);
  if (status !== undefined) return status === 408 || status === 429 || status >= 500;
  const code = (err as { code?: unknown } | null)?.code;
  if (
    typeof code === 'string' &&
    /^(ECONNRESET|ECONNREFUSED|EPIPE|ETIMEDOUT|EAI_AGAIN|ENOTFOUND|ERR_STREAM_PREMATURE_CLOSE|UND_ERR_SOCKET)$/.test(
      code,
    )
  )
    return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /socket hang up|premature close|aborted|ECONNRESET|network|terminated/i.test(msg);
}

/**
 * Turns a client error for `target` (a `gs://...` object or prefix URL) into a one-line error with
 * a fix. `action` is a short verb phrase ("upload", "download", "list").
 */
export function toGcsError(err: unknown, target: string, action: string): LockstepError {
  if (err instanceof LockstepError) return err;
  const status = statusOf(err);
  const detail = firstLine(err);
  // The raw client error keeps request headers (the bearer token): chain a scrubbed copy instead.
  const cause = Object.assign(new Error(detail), { code: status });
  let fix: string;
  const authProblem = /default credentials|invalid_grant|unauthorized_client|invalid_client|credential/i.test(
    detail,
  );
  if (status === 401 || status === 403 || (status === undefined && authProblem)) {
    fix =
      'Check Application Default Credentials (gcloud auth application-default login locally, Workload Identity Federation in Actions) and that the identity holds roles/storage.objectAdmin on the bucket.';
  } else if (status === 404) {
    return new IntegrityError(
      formatProblem(
        target,
        `${action} failed: not found`,
        detail,
        'Check the bucket and prefix in the remote URL, or push the object first.',
      ),
      { cause },
    );
  } else if (status === 429 || (status !== undefined && status >= 500) || isTransient(err)) {
    fix =
      'The service kept failing after retries with backoff; run the command again (finished objects are not sent twice).';
  } else {
    fix = 'Check the remote URL and the bucket configuration.';
  }
  const problem = status !== undefined ? `${action} failed with HTTP ${status}` : `${action} failed`;
  return new LockstepError(formatProblem(target, problem, detail, fix), { cause });
}
