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

/** Parses a positive integer option, naming the option when it is not one. */
export function parsePositiveInt(name: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) {
      throw new Error(`${name}: expected a non-negative integer "${value}". Pass e.g. ${name} 8.`);
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
