/**
 * Times and spans given on the command line, parsed strictly: a value `Date` would stretch into
 * some other time (`1` is the year 2001, `Tuesday 5` is May 2001) is a usage error, not a window.
 */
import { UsageError } from '../errors.ts';

const SECONDS = {
  second: 1,
  minute: 60,
  hour: 3600,
  day: 86400,
  week: 604800,
  month: 2629746,
  year: 31556952,
} as const;

const RELATIVE = /^(\d+)\s*(second|minute|hour|day|week|month|year)s?(\s+ago)?$/i;
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** Latest instant a Date can hold: a span that reaches past it is not a time. */
const MAX_MS = 8.64e15;

/** An ISO date or date and time (`2026-01-31`, `2026-01-31T12:00:00Z`) → Date; undefined if not one. */
export function parseIsoTime(value: string): Date | undefined {
  const v = value.trim();
  if (!ISO.test(v)) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : new Date(t);
}

/**
 * `--since`-style values: an ISO date (or date and time), or `<n> <unit>s [ago]` before `now`.
 * A UsageError naming `flag` otherwise.
 */
export function parseSince(flag: string, value: string, now = Date.now()): Date {
  const rel = RELATIVE.exec(value.trim());
  if (rel) {
    const unit = rel[2]!.toLowerCase() as keyof typeof SECONDS;
    const t = now - Number(rel[1]) * SECONDS[unit] * 1000;
    if (Math.abs(t) <= MAX_MS) return new Date(t);
  } else {
    const d = parseIsoTime(value);
    if (d) return d;
  }
  throw new UsageError(
    `${flag}: not a date "${value}". Pass an ISO date (2026-01-31), a time (2026-01-31T12:00:00Z) or a span ("2 weeks ago").`,
  );
}
