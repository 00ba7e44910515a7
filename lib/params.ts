/**
 * Loading `params.yaml` through the one schema in `lib/params-schema.ts`. Errors name the file, the
 * dotted key and the fix (`params.yaml: train.epochs: expected integer, got "ten". Fix the value.`);
 * unknown keys are named. A missing file or key means the default.
 */
import { z } from 'zod';
import type { Repo } from './repo.ts';
import { ConfigError, LockstepError } from './errors.ts';
import { paramsSchema, type Params } from './params-schema.ts';
import { readFileAtRev } from './git.ts';
import { parseYamlSource, readConfigText, showValue, validateYaml } from './yaml-source.ts';

export type { Params };

/** JSON Schema of params.yaml, for editors (`params.schema.json`). */
export function paramsJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(paramsSchema, { io: 'input' }) as Record<string, unknown>;
}

/** Unwraps defaults/optionals to the schema at `path`, to phrase "expected integer". */
function schemaAt(path: readonly PropertyKey[]): any {
  let s: any = paramsSchema;
  const unwrap = () => {
    while (s?._zod?.def && ['default', 'prefault', 'optional', 'nullable'].includes(s._zod.def.type)) {
      s = s._zod.def.innerType;
    }
  };
  unwrap();
  for (const k of path) {
    if (s?._zod?.def?.type === 'object') s = s._zod.def.shape[k as string];
    else if (s?._zod?.def?.type === 'array') s = s._zod.def.element;
    else return undefined;
    unwrap();
  }
  return s;
}

function expectedFor(path: readonly PropertyKey[]): string | undefined {
  const s = schemaAt(path);
  if (s?._zod?.def?.type !== 'number') return undefined;
  const checks: any[] = s._zod.def.checks ?? [];
  const isInt = s.format === 'safeint' || checks.some((c) => c?._zod?.def?.format === 'safeint');
  return isInt ? 'integer' : 'number';
}

/** Parses params text (empty → every default). Throws a ConfigError listing every problem, one line each. */
export function parseParams(text: string, file = 'params.yaml'): Params {
  const parsed = parseYamlSource(text, file);
  const src = { ...parsed, value: parsed.value ?? {} };
  const raw = src.value;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      `${file}: expected a mapping of sections (data, train, ...), got ${showValue(raw)}. Fix the file.`,
    );
  }
  return validateYaml(src, paramsSchema, {
    expectedAt: expectedFor,
    knownAt: (path) => {
      const shape = schemaAt(path)?._zod?.def?.shape;
      return shape ? `(known: ${Object.keys(shape).join(', ')})` : undefined;
    },
  });
}

/** Reads and validates `params.yaml` at the repository root (missing file → defaults). */
export function loadParams(repo: Repo): Params {
  const text = readConfigText(repo.paramsPath, 'params.yaml');
  return text === undefined ? parseParams('') : parseParams(text, 'params.yaml');
}

/** The value at a dotted key (`train.lr`), or undefined when a segment is missing. */
export function getParam(params: Record<string, any>, key: string): unknown {
  let v: any = params;
  for (const part of key.split('.')) {
    if (v === null || typeof v !== 'object' || !(part in v)) return undefined;
    v = v[part];
  }
  return v;
}

/** True when `key` names a value in the params schema (used to check stage declarations). */
export function hasParam(params: Record<string, any>, key: string): boolean {
  return getParam(params, key) !== undefined;
}

/**
 * Params as of git revision `rev` (read from git objects, no checkout). A revision without
 * params.yaml gives the defaults; an unknown revision is an error.
 */
export async function paramsAtRev(repo: Repo, rev: string): Promise<Params> {
  const text = await readFileAtRev(repo.root, rev, 'params.yaml');
  try {
    return parseParams(text ?? '', `params.yaml@${rev}`);
  } catch (err) {
    if (err instanceof LockstepError) throw err;
    throw new ConfigError(`params.yaml@${rev}: cannot read params. Check the revision.`, { cause: err });
  }
}
