/**
 * Grids for `exp run --queue`: `-S train.lr=0.001,0.003 -S train.units=64,128` is the product of
 * the comma lists (four experiments). A value that starts a YAML flow collection or a quoted
 * string (`[a,b]`, `"a,b"`) is one value, never split.
 */
import { UsageError } from '../errors.ts';
import { parseOverrides } from './run.ts';

/** Every combination of the `-S key=v1,v2,...` flags, in flag order (the last key varies fastest). */
export function expandGrid(pairs: string[]): Array<Record<string, unknown>> {
  let combos: string[][] = [[]];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-S "${pair}": expected key=value, e.g. -S train.lr=0.003.`);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const whole = /^\s*[[{"']/.test(raw);
    const values = whole ? [raw] : raw.split(',');
    if (values.some((v) => v.trim() === ''))
      throw new UsageError(`-S "${pair}": empty value in the list. Write -S ${key}=a,b,c.`);
    combos = combos.flatMap((c) => values.map((v) => [...c, `${key}=${v}`]));
  }
  return combos.map((c) => parseOverrides(c));
}
