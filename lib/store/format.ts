/** Formatting and option parsing shared by the store commands (add, push, pull, gc). */
import { InvalidArgumentError } from 'commander';

/** `1536` -> `1.5 KiB`. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(1)} ${units[i]}`;
}

/**
 * Parses a whole-number option of at least `min` (default 0), naming the option when it is not
 * one. Only decimal digits count: an empty value (an unset shell variable) is refused rather
 * than read as 0, which for `gc --exp-older-than` would drop every experiment.
 */
export function parsePositiveInt(name: string, min = 0): (value: string) => number {
  return (value: string) => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : NaN;
    if (!Number.isSafeInteger(n) || n < min) {
      const what = min === 0 ? 'a non-negative integer' : `an integer of at least ${min}`;
      throw new Error(`${name}: expected ${what} "${value}". Pass e.g. ${name} 8.`);
    }
    return n;
  };
}

/** Turns a parser's Error into commander's usage error (exit 2). */
export function wrap<T>(parse: (v: string) => T): (v: string) => T {
  return (v) => {
    try {
      return parse(v);
    } catch (err) {
      throw new InvalidArgumentError((err as Error).message);
    }
  };
}
