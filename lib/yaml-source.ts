/**
 * Parsing a YAML file against a zod schema with errors that name the file, the line and the key:
 * `artifacts.lock.yaml:12: stages.train.code: expected string, got 42. Fix the value.`
 * One helper so params.yaml, the lockfile, promotion policies and .lockstep/config.yaml report
 * problems the same way: parse, then the schema, then named rules, and every problem at once (one
 * line each, in file order) instead of the first.
 */
import fs from 'node:fs';
import { LineCounter, parseDocument, isMap, isNode, isScalar, isSeq, type Document } from 'yaml';
import { FAILSAFE_SCHEMA, Type, load as loadYaml } from 'js-yaml';
import type { z } from 'zod';
import { ConfigError, ConfigProblems } from './errors.ts';

/** A parsed YAML document plus a way to find the line of a key path. */
export interface YamlSource {
  file: string;
  value: unknown;
  /** 1-based line of the node at `path` (or of its nearest existing parent); undefined if unknown. */
  lineOf(path: readonly PropertyKey[]): number | undefined;
  /** Problems found while parsing that do not stop the schema check (duplicate keys). */
  problems?: Problem[];
}

/**
 * Reads a configuration file's text; undefined when it does not exist. Any other failure (a
 * directory in its place, no permission) is a one-line ConfigError naming the file.
 */
export function readConfigText(abs: string, shown: string): string | undefined {
  try {
    return fs.readFileSync(abs, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    if (code === 'EISDIR')
      throw new ConfigError(`${shown}: is a directory, not a file. Replace it with a YAML file.`);
    throw new ConfigError(`${shown}: cannot read (${code ?? String(err)}). Check its permissions.`, {
      cause: err,
    });
  }
}

/** Parses YAML text; a syntax error becomes a one-line ConfigError with `file:line:`. */
export function parseYamlSource(text: string, file: string, fix = 'Fix the YAML syntax.'): YamlSource {
  const lineCounter = new LineCounter();
  // The yaml package's own duplicate-key check is quadratic in a mapping's size (a 5 MB file took
  // minutes) and stops at the first one: duplicateKeys finds them all in one pass instead.
  const doc: Document = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false });
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const line = lineCounter.linePos(first.pos[0]).line;
    const problem = first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new ConfigError(`${file}:${line}: invalid YAML: ${problem}. ${fix}`);
  }
  const lineOf = (path: readonly PropertyKey[]): number | undefined => {
    // A key's own line (an unknown key, a bad value): the pair's key node in its parent mapping.
    if (path.length > 0) {
      const parent = doc.getIn(path.slice(0, -1) as unknown[], true);
      if (isMap(parent)) {
        const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === String(path.at(-1)));
        if (pair && isNode(pair.key) && pair.key.range) return lineCounter.linePos(pair.key.range[0]).line;
      }
    }
    for (let n = path.length; n >= 0; n--) {
      const node = doc.getIn(path.slice(0, n) as unknown[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return undefined;
  };
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    // The yaml package stops alias expansion past maxAliasCount (a "billion laughs" document).
    if (err instanceof ReferenceError)
      throw new ConfigError(
        `${file}: YAML aliases expand too far (more than 100 copies of an anchor). Write the values out instead of nesting aliases.`,
        { cause: err },
      );
    throw err;
  }
  return { file, value, lineOf, problems: duplicateKeys(doc, lineCounter) };
}

/** Every key that repeats a key of its own mapping, at the line of the repetition. */
function duplicateKeys(doc: Document, lineCounter: LineCounter): Problem[] {
  const problems: Problem[] = [];
  const lineAt = (node: unknown): number | undefined =>
    isNode(node) && node.range ? lineCounter.linePos(node.range[0]).line : undefined;
  const walk = (node: unknown, path: PropertyKey[]): void => {
    if (isMap(node)) {
      const seen = new Map<string, unknown>();
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
        if (key === undefined) continue;
        const first = seen.get(key);
        if (first === undefined) seen.set(key, pair.key);
        else {
          const firstLine = lineAt(first);
          problems.push({
            path: [...path, key],
            line: lineAt(pair.key),
            message: `${[...path, key].map(String).join('.')}: duplicate key "${key}"${firstLine ? ` (first on line ${firstLine})` : ''}. Keep one of them`,
          });
        }
        walk(pair.value, [...path, key]);
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => walk(item, [...path, i]));
    }
  };
  walk(doc.contents, []);
  return problems;
}

/** Describes a value for an error message: JSON for scalars, the type name otherwise. */
export function showValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: any = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = v[k as any];
  }
  return v;
}

/** Turns one zod issue into `<key>: <problem>. <fix>` (without the file). */
export function describeIssue(issue: z.core.$ZodIssue, input: unknown, expected?: string): string {
  const key = issue.path.map(String).join('.');
  const value = valueAt(input, issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const where = key ? `${key}.${issue.keys[0]}` : String(issue.keys[0]);
      return `${where}: unknown key "${issue.keys[0]}". Remove it or check the spelling`;
    }
    case 'invalid_type': {
      if (!key)
        return `(top level): expected ${expected ?? issue.expected}, got ${showValue(value)}. Fix the file`;
      if (value === undefined) return `${key}: missing (expected ${expected ?? issue.expected}). Add it`;
      const want = issue.expected === ('int' as string) ? 'integer' : (expected ?? issue.expected);
      return `${key}: expected ${want}, got ${showValue(value)}. Fix the value`;
    }
    case 'too_small':
      return `${key}: must be ${issue.inclusive === false ? '>' : '>='} ${String(issue.minimum)}, got ${showValue(value)}. Fix the value`;
    case 'too_big':
      return `${key}: must be ${issue.inclusive === false ? '<' : '<='} ${String(issue.maximum)}, got ${showValue(value)}. Fix the value`;
    case 'invalid_key': {
      // A mapping key that fails its own schema (a tracked path breaking the path rules).
      const why = issue.issues[0]?.message ?? 'invalid key';
      const parent = issue.path.slice(0, -1).map(String).join('.');
      return `${parent}: ${why} "${String(issue.path.at(-1))}". Track a path inside the repository`;
    }
    case 'invalid_value':
      return `${key}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${showValue(value)}. Fix the value`;
    default:
      return `${key || '(top level)'}: ${issue.message.replace(/\.$/, '')}, got ${showValue(value)}. Fix the value`;
  }
}

/** The path of a problem, pointing at the offending key for unknown keys. */
export function issuePath(issue: z.core.$ZodIssue): PropertyKey[] {
  return issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]!] : [...issue.path];
}

/** One problem found in a file: where (a key path) and `<key>: <problem>. <fix>` (no file). */
export interface Problem {
  path: readonly PropertyKey[];
  /** The line when the path alone does not give it (the second of two equal keys). */
  line?: number;
  message: string;
}

/** A named rule over a parsed value: returns every problem it finds (none: the value is fine). */
export type Rule<T> = (value: T) => Problem[];

export interface ValidateOptions {
  /** Appended to each schema problem (`Fix the value` is already there): e.g. `, or restore the file from git`. */
  suffix?: string;
  /** A suffix that depends on where the problem is (wins over `suffix`). */
  suffixAt?: (path: readonly PropertyKey[]) => string;
  /** Phrases the expected type at a path (`integer` rather than `number`). */
  expectedAt?: (path: readonly PropertyKey[]) => string | undefined;
  /** Extra text for an unknown key at a path (`(known: arch, epochs, ...)`). */
  knownAt?: (path: readonly PropertyKey[]) => string | undefined;
}

/** Formats problems as `<file>:<line>: <message>.` lines, in file order, without duplicates. */
export function formatProblems(src: YamlSource, problems: Problem[]): string[] {
  const lines = problems.map((p) => {
    const line = p.line ?? src.lineOf(p.path);
    return {
      line: line ?? 0,
      text: `${src.file}${line ? `:${line}` : ''}: ${p.message.replace(/\.$/, '')}.`,
    };
  });
  lines.sort((a, b) => a.line - b.line);
  return [...new Set(lines.map((l) => l.text))];
}

/** Every zod issue as a problem (one per unknown key), phrased with `options`. */
function issueProblems(issues: z.core.$ZodIssue[], value: unknown, options: ValidateOptions): Problem[] {
  // zod reports all unknown keys of one mapping in one issue: one problem (and line) per key.
  const split = issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys' && issue.keys.length > 1
      ? issue.keys.map((k) => ({ ...issue, keys: [k] }))
      : [issue],
  );
  return split.map((issue) => {
    const path = issuePath(issue);
    const expected = issue.code === 'invalid_type' ? options.expectedAt?.(path) : undefined;
    let message = describeIssue(issue, value, expected);
    if (issue.code === 'unrecognized_keys') {
      const known = options.knownAt?.(issue.path);
      if (known) message += ` ${known}`;
    }
    return { path, message: message + (options.suffixAt?.(path) ?? options.suffix ?? '') };
  });
}

/**
 * Validates a parsed YAML source against `schema`, then (when the schema passed) the named `rules`.
 * Throws one ConfigError listing every problem, one line each; returns the parsed value otherwise.
 */
export function validateYaml<S extends z.ZodType>(
  src: YamlSource,
  schema: S,
  options: ValidateOptions = {},
  rules: Rule<z.infer<S>>[] = [],
): z.infer<S> {
  const result = schema.safeParse(src.value);
  const problems = [
    ...(src.problems ?? []),
    ...(result.success
      ? rules.flatMap((rule) => rule(result.data))
      : issueProblems(result.error.issues, src.value, options)),
  ];
  if (problems.length > 0) throw new ConfigProblems(formatProblems(src, problems));
  return (result as { data: z.infer<S> }).data;
}

export interface CheckValueOptions extends ValidateOptions {
  /** The file's text (JSON or YAML): gives each problem its line; parsed only when one is found. */
  text?: string;
  /** Where `value` sits in the file (`['slices']` when only that part is checked). */
  at?: readonly PropertyKey[];
}

/**
 * A value read from a file (JSON documents, parts of them) against `schema`: the data, or every
 * problem as `<file>[:<line>]: <key>: <problem>. <fix>` lines in file order, the same lines
 * validateYaml gives configuration files. Callers pick the error class (a stage's own error).
 */
export function checkValue<S extends z.ZodType>(
  schema: S,
  value: unknown,
  file: string,
  options: CheckValueOptions = {},
): { ok: true; data: z.infer<S> } | { ok: false; lines: string[] } {
  const result = schema.safeParse(value);
  if (result.success) return { ok: true, data: result.data };
  const at = options.at ?? [];
  const problems = issueProblems(result.error.issues, value, options).map((p) => ({
    path: [...at, ...p.path],
    message: at.length ? `${at.map(String).join('.')}.${p.message}` : p.message,
  }));
  let lineOf: YamlSource['lineOf'] = () => undefined;
  if (options.text !== undefined) {
    try {
      lineOf = parseYamlSource(options.text, file).lineOf;
    } catch {
      // Text the YAML parser refuses (JSON it reads differently) still gets its problems, unlined.
    }
  }
  return { ok: false, lines: formatProblems({ file, value, lineOf }, problems) };
}

/** {@link checkValue} that throws every problem as one ConfigProblems error. */
export function parseValue<S extends z.ZodType>(
  schema: S,
  value: unknown,
  file: string,
  options: CheckValueOptions = {},
): z.infer<S> {
  const checked = checkValue(schema, value, file, options);
  if (!checked.ok) throw new ConfigProblems(checked.lines);
  return checked.data;
}

/** A plain scalar resolved by YAML 1.2 core rules when it matches `test`. */
function coreScalar(tag: string, test: RegExp, construct: (s: string) => unknown): Type {
  return new Type(`tag:yaml.org,2002:${tag}`, {
    kind: 'scalar',
    resolve: (data: unknown) => typeof data === 'string' && test.test(data),
    construct: (data: string) => construct(data),
  });
}

/**
 * The YAML 1.2 core schema exactly as the `yaml` package reads it. js-yaml's CORE_SCHEMA also
 * takes `0b101`, `1_000` and `+0x1f` as numbers, which `parseYamlSource` reads as strings (and
 * a schema rejects as numbers): the fast path must not accept what the full parser refuses.
 */
const CORE_1_2 = FAILSAFE_SCHEMA.extend({
  implicit: [
    coreScalar('null', /^(?:~|[Nn]ull|NULL)?$/, () => null),
    coreScalar('bool', /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/, (s) => /^[Tt]/.test(s)),
    coreScalar('int', /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/, (s) =>
      s.startsWith('0o')
        ? parseInt(s.slice(2), 8)
        : s.startsWith('0x')
          ? parseInt(s.slice(2), 16)
          : Number(s),
    ),
    coreScalar(
      'float',
      /^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$/,
      (s) =>
        /nan$/i.test(s) ? NaN : /inf$/i.test(s) ? (s.startsWith('-') ? -Infinity : Infinity) : Number(s),
    ),
  ],
});

/** Text that may hold a YAML alias (`*name` after a space, a line start or a flow indicator). */
const ALIAS = /(?:^|[\s[{,])\*/m;

/**
 * Text the two parsers may read differently, which goes the full way: a tag (`!!float 0` is 0 to
 * js-yaml, the string "0" to the yaml package), a directive (`%YAML 1.1` makes `on` a boolean to
 * the yaml package alone), an explicit `?` key or a flow collection as a key (js-yaml names the key
 * `a,b` for `[a, b]`, the yaml package `[ a, b ]`), a key that may be past 1024 characters (the
 * longest implicit key the yaml package accepts), a carriage return alone (a line break to js-yaml,
 * text to the yaml package) and `---` or `...` run into text or followed by a node (`---#x` starts a document for
 * js-yaml, a key or an error to the yaml package), and a comment run into a closing bracket or quote (a
 * comment to js-yaml, an error to the yaml package). Where js-yaml is lenient with malformed text
 * the yaml package refuses, an anchor, a tab in indentation, a block scalar's indentation digit and
 * a line with an odd number of `"` (a string over several lines) go the full way too.
 */
const DIVERGENT =
  /(?:^|[\s[{,])[!?&]|^%|[\]}][ \t]*:|\r(?!\n)|^(?:---|\.\.\.)(?:[^\s]|[ \t]+[^\s#])|[\]}"']#|^ *\t|[|>][+-]?[1-9]|^[^"\n]*"(?:[^"\n]*"[^"\n]*")*[^"\n]*$/m;

/**
 * Whether a flow collection (`[...]`, `{...}`) may go on past its line: js-yaml reads its next
 * lines at any indentation, the yaml package refuses those not indented past the parent key.
 * Brackets in strings and comments count too, which only sends such a file the full way.
 */
function hasMultilineFlow(text: string): boolean {
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) depth++;
    else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x0a && depth !== 0) return true;
  }
  return depth !== 0;
}

/**
 * Whether a `:` of `text` comes more than `max` characters after the line's start or the `:`
 * before it on its line: where an implicit key longer than the yaml package accepts could end (a
 * long value with no `:` after it is fine). One pass: a regex would retry from each column.
 */
function hasLongKey(text: string, max: number): boolean {
  let from = 0;
  let nl = text.indexOf('\n');
  for (let i = text.indexOf(':'); i >= 0; i = text.indexOf(':', i + 1)) {
    for (; nl >= 0 && nl < i; nl = text.indexOf('\n', nl + 1)) from = nl + 1;
    if (i - from > max) return true;
    from = i;
  }
  return false;
}

/** Whether a mapping anywhere in `value` has the key "null": js-yaml's name for a null key, "" to the yaml package. */
function hasNullKey(value: unknown): boolean {
  if (Array.isArray(value)) return value.some(hasNullKey);
  if (value === null || typeof value !== 'object') return false;
  if (Object.hasOwn(value, 'null')) return true;
  return Object.values(value).some(hasNullKey);
}

/**
 * The value of YAML `text` built with js-yaml (several times faster than the `yaml` document
 * parser, which parseYamlSource needs to point errors at lines), for files that are almost always
 * well-formed and read often: `{ value }`, or undefined when js-yaml refuses the text, the text
 * holds an alias or something the two parsers read differently (DIVERGENT, a long key, a flow
 * collection over several lines, a null key). The caller checks the value with its schema and takes the full way
 * (parseYamlSource and validateYaml) for anything not accepted, which gives the exact error.
 * Aliases go the full way: it refuses documents whose aliases expand too far, where js-yaml would
 * hand the expansion (shared, but exponential to walk) to the schema and the caller.
 */
export function quickYamlValue(text: string): { value: unknown } | undefined {
  if (ALIAS.test(text) || DIVERGENT.test(text) || hasLongKey(text, 1000) || hasMultilineFlow(text))
    return undefined;
  let value: unknown;
  try {
    value = loadYaml(text, { schema: CORE_1_2 });
  } catch {
    return undefined;
  }
  return hasNullKey(value) ? undefined : { value };
}
