/**
 * Grids for `exp run --queue`: `-S train.lr=0.001,0.003 -S train.units=64,128` is the product of
 * the comma lists (four experiments). Commas inside a quoted string or a YAML flow collection do
 * not split (`"a,b"`, `[1,2]`): `-S note="a,b",c` is two values, `a,b` and `c`.
 */
import { UsageError } from '../errors.ts';
import { parseOverrides } from './run.ts';

/**
 * Splits `raw` at the commas outside quotes and brackets (which open a value only at its start, as
 * in YAML: `it's` is a plain word); undefined when they do not balance.
 */
function splitList(raw: string): string[] | undefined {
  const values: string[] = [];
  let quote = '';
  let depth = 0;
  let start = 0;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i]!;
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if ((c === '"' || c === "'") && (depth > 0 || raw.slice(start, i).trim() === '')) quote = c;
    else if ((c === '[' || c === '{') && (depth > 0 || raw.slice(start, i).trim() === '')) depth++;
    else if (c === ']' || c === '}') {
      if (--depth < 0) return undefined;
    } else if (c === ',' && depth === 0) {
      values.push(raw.slice(start, i));
      start = i + 1;
    }
  }
  if (quote || depth !== 0) return undefined;
  values.push(raw.slice(start));
  return values;
}

/** Every combination of the `-S key=v1,v2,...` flags, in flag order (the last key varies fastest). */
export function expandGrid(pairs: string[]): Array<Record<string, unknown>> {
  let combos: string[][] = [[]];
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new UsageError(`-S "${pair}": expected key=value, e.g. -S train.lr=0.003.`);
    const key = pair.slice(0, eq);
    const raw = pair.slice(eq + 1);
    const values = splitList(raw);
    if (!values)
      throw new UsageError(
        `-S "${pair}": unbalanced quotes or brackets in the value. Close them, e.g. -S ${key}='"a,b",c'.`,
      );
    if (values.some((v) => v.trim() === ''))
      throw new UsageError(`-S "${pair}": empty value in the list. Write -S ${key}=a,b,c.`);
    combos = combos.flatMap((c) => values.map((v) => [...c, `${key}=${v}`]));
  }
  return combos.map((c) => parseOverrides(c));
}
