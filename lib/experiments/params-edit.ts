/**
 * Editing params.yaml in place: only the values of the keys set change; comments, quoting,
 * flow collections, blank lines and key order elsewhere stay byte for byte. Scalars are
 * rewritten in their CST token (the `yaml` package's lossless layer). A key that does not exist
 * yet, or a value that is a list or a mapping, goes through the Document API instead, which keeps
 * comments but renders the file in its own layout; params.yaml edits by `exp` and `tune` set
 * existing scalars, so that path is the exception.
 */
import { Composer, CST, isCollection, isScalar, Parser, parseDocument, type Document } from 'yaml';
import { isDeepStrictEqual } from 'node:util';

/** Parses `text` into its CST tokens and the one document composed from them (tokens kept). */
function parseLossless(text: string): { tokens: CST.Token[]; doc: Document.Parsed | undefined } {
  const tokens = [...new Parser().parse(text)];
  const docs = [...new Composer({ keepSourceTokens: true }).compose(tokens)];
  return { tokens, doc: docs[0] };
}

/** The source text of `value` as a scalar, or undefined when it is not a scalar. */
function scalarSource(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return value;
  return undefined;
}

/**
 * Sets `values` (dotted key → value) in params.yaml `text`, changing nothing else. Keys are
 * applied in order; the result is returned, not written.
 */
export function setParamsValues(text: string, values: Record<string, unknown>): string {
  const pending: Array<[string[], unknown]> = [];
  let current = text;
  for (const [key, value] of Object.entries(values)) {
    const keyPath = key.split('.');
    const source = scalarSource(value);
    const { tokens, doc } = parseLossless(current);
    const node = doc?.getIn(keyPath, true);
    if (source === undefined || !doc || !isScalar(node) || !node.srcToken || !CST.isScalar(node.srcToken)) {
      pending.push([keyPath, value]);
      continue;
    }
    // A string that would read back as another type (`"3"`, `"true"`) must be quoted.
    const token = node.srcToken;
    CST.setScalarValue(token, source, typeof value === 'string' ? {} : { type: 'PLAIN' });
    let next = tokens.map((t) => CST.stringify(t)).join('');
    if (!isDeepStrictEqual(parseDocument(next).getIn(keyPath), value)) {
      const again = parseLossless(current);
      const n = again.doc!.getIn(keyPath, true);
      CST.setScalarValue((n as { srcToken: CST.FlowScalar }).srcToken, source, { type: 'QUOTE_DOUBLE' });
      next = again.tokens.map((t) => CST.stringify(t)).join('');
    }
    current = next;
  }
  if (pending.length === 0) return current;
  const doc = parseDocument(current);
  for (const [keyPath, value] of pending) {
    const parentPath = keyPath.slice(0, -1);
    const parent = parentPath.length ? doc.getIn(parentPath, true) : doc.contents;
    if (parentPath.length && !isCollection(parent)) doc.setIn(parentPath, doc.createNode({}));
    doc.setIn(keyPath, value);
  }
  return doc.toString();
}

/**
 * Dotted leaf keys whose values differ between two parsed params objects (a list is one leaf),
 * with the value in `to`; keys only in `from` map to undefined.
 */
export function changedParamValues(
  from: Record<string, unknown>,
  to: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const isMap = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  const walk = (a: unknown, b: unknown, prefix: string): void => {
    if (isMap(a) && isMap(b)) {
      for (const k of new Set([...Object.keys(a), ...Object.keys(b)]))
        walk(a[k], b[k], prefix ? `${prefix}.${k}` : k);
      return;
    }
    if (!isDeepStrictEqual(a, b)) out[prefix] = b;
  };
  walk(from, to, '');
  return out;
}

/** Deletes dotted `keys` from params.yaml `text` (Document API: the parent mapping re-renders). */
export function deleteParamsKeys(text: string, keys: string[]): string {
  if (keys.length === 0) return text;
  const doc = parseDocument(text);
  for (const key of keys) doc.deleteIn(key.split('.'));
  return doc.toString();
}
