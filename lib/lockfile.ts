/**
 * `artifacts.lock.yaml`: what each stage consumed and produced, by content hash, plus the paths
 * tracked with `lockstep add`. One zod schema parses it, shapes what is written, and generates
 * `lib/lockfile.schema.json`. Serialization is deterministic (fixed field order, sorted keys where
 * order carries no meaning) so diffs are stable; writes are atomic (temp + fsync + rename).
 */
import fs from 'node:fs';
import { stringify } from 'yaml';
import { z } from 'zod';
import type { Repo } from './repo.ts';
import type { GitReader } from './git-reader.ts';
import type { ArtifactRef, LockEntry, Lockfile } from './types.ts';
import { ConfigError, LockfileConflictError } from './errors.ts';
import { writeFileAtomic } from './atomic.ts';
import { safePathSchema } from './entry-path.ts';
import { parseYamlSource, quickYamlValue, showValue, validateYaml } from './yaml-source.ts';

/** Where the lockfile lives, repository-relative. */
export const LOCKFILE_NAME = 'artifacts.lock.yaml';

/** The schema version this build reads and writes. */
export const LOCKFILE_SCHEMA = 1;

const oid = z.string().regex(/^[0-9a-f]{64}$/, 'expected a 64-hex-digit sha256');
const count = z.number().int().min(0);

const artifactFields = {
  hash: oid,
  size: count,
  nfiles: count,
  dir: z.boolean().optional(),
};

/** Paths arrive in pull requests: the rules of manifest entry paths apply (no "..", no absolute path). */
export const artifactRefSchema = z.object({ path: safePathSchema, ...artifactFields }).strict();

/** A resolved non-file input: identity hash, where it was read (`dev@1a2b3c4d`), and the commit. */
export const inputRefSchema = z
  .object({
    hash: oid,
    label: z.string().min(1),
    rev: z
      .string()
      .regex(/^[0-9a-f]{40,64}$/, 'expected a full commit id')
      .optional(),
  })
  .strict();

export const lockEntrySchema = z
  .object({
    /** Fingerprint of the stage's source files. */
    code: oid,
    deps: z.array(artifactRefSchema).default([]),
    /** Dotted params key → value read. */
    params: z.record(z.string(), z.unknown()).default({}),
    outs: z.array(artifactRefSchema).default([]),
    /**
     * Flattened numeric metrics, without the stage's `outOnlyMetrics` (evaluate's slices stay in
     * its out). Lockfiles written before that hold them too, and parse the same.
     */
    metrics: z.record(z.string(), z.number()).optional(),
    /** Declared non-file inputs (a gate's baseline) as resolved for the run. */
    inputs: z.record(z.string(), inputRefSchema).optional(),
  })
  .strict();

/** The one schema of `artifacts.lock.yaml`. */
export const lockfileSchema = z
  .object({
    schema: z.literal(LOCKFILE_SCHEMA),
    /** Paths tracked with `lockstep add`, keyed by repository-relative path. */
    data: z.record(safePathSchema, z.object(artifactFields).strict()).default({}),
    /** Per stage: code fingerprint, deps, params read, outs, metrics. */
    stages: z.record(z.string(), lockEntrySchema).default({}),
    /**
     * Stages whose entry a merge dropped, with the reason the next plan shows (for example
     * "merged: both sides changed this stage"). Written only for stages without an entry.
     */
    stale: z.record(z.string(), z.string().min(1)).optional(),
  })
  .strict();

/** JSON Schema of the lockfile, for editors (`lib/lockfile.schema.json`). */
export function lockfileJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(lockfileSchema, { io: 'input' }) as Record<string, unknown>;
}

/** A lockfile with nothing in it. */
export function emptyLockfile(): Lockfile {
  return { schema: LOCKFILE_SCHEMA, data: {}, stages: {} };
}

/**
 * Parses lockfile text. Malformed YAML, an unknown schema version or a field of the wrong shape
 * is a one-line ConfigError naming `file:line` and the key. Empty text is an empty lockfile.
 */
export function parseLockfile(text: string, file = 'artifacts.lock.yaml', repair?: string): Lockfile {
  const marker = conflictMarkerLine(text);
  if (marker !== undefined) {
    throw new LockfileConflictError(
      `${file}:${marker}: unresolved merge conflict (git conflict markers). ${repair ?? 'Run "npx lockstep lock resolve" to merge it stage by stage, then "npx lockstep repro" to recompute what became stale.'}`,
    );
  }
  const src = parseYamlSource(text, file, repair ?? 'Fix the syntax, or restore the file from git.');
  const raw = src.value;
  if (raw === null || raw === undefined) return emptyLockfile();
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(
      `${file}:1: expected a mapping with schema, data and stages, got ${showValue(raw)}. ${repair ?? 'Restore the file from git.'}`,
    );
  }
  const version = (raw as Record<string, unknown>).schema;
  if (version !== LOCKFILE_SCHEMA) {
    const line = src.lineOf(['schema']) ?? 1;
    if (version === undefined) {
      throw new ConfigError(
        `${file}:${line}: schema: missing (expected ${LOCKFILE_SCHEMA}). ${repair ?? 'Add "schema: 1".'}`,
      );
    }
    throw new ConfigError(
      `${file}:${line}: schema: unknown schema version ${showValue(version)}. This lockstep reads version ${LOCKFILE_SCHEMA}; upgrade lockstep.`,
    );
  }
  const suffix = repair ? `. ${repair.replace(/\.$/, '')}` : ', or restore the file from git';
  return validateYaml(src, lockfileSchema, { suffix }) as Lockfile;
}

/**
 * `parseLockfile` for lockfiles read from history, which are many and almost always well-formed:
 * the value is first built with js-yaml (several times faster than the \`yaml\` document parser
 * `parseLockfile` uses to point errors at lines) and checked by the same zod schema. Text this
 * does not accept (conflict markers, a bad value, another schema version) goes through
 * `parseLockfile`, which gives the lockfile or the exact one-line error.
 */
export function parseLockfileQuick(text: string, file = 'artifacts.lock.yaml', repair?: string): Lockfile {
  if (conflictMarkerLine(text) === undefined) {
    const raw = quickYamlValue(text)?.value;
    if (raw && typeof raw === 'object' && (raw as Record<string, unknown>).schema === LOCKFILE_SCHEMA) {
      const quick = lockfileSchema.safeParse(raw);
      if (quick.success) return quick.data as Lockfile;
    }
  }
  return parseLockfile(text, file, repair);
}

/** The 1-based line of the first git conflict marker in `text`, if any. */
export function conflictMarkerLine(text: string): number | undefined {
  const m = /^(?:<{7}|={7}|>{7}|\|{7})(?: |$)/m.exec(text);
  if (!m) return undefined;
  return text.slice(0, m.index).split('\n').length;
}

function sortedRecord<T, U>(rec: Record<string, T>, map: (v: T) => U): Record<string, U> {
  const outRec: Record<string, U> = {};
  for (const k of Object.keys(rec).sort()) outRec[k] = map(rec[k]!);
  return outRec;
}

function orderRef(ref: ArtifactRef): ArtifactRef {
  return {
    path: ref.path,
    hash: ref.hash,
    size: ref.size,
    nfiles: ref.nfiles,
    ...(ref.dir ? { dir: true } : {}),
  };
}

/** Sorts object keys recursively (param values may be mappings; their key order carries no meaning). */
function sortDeep(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortDeep);
  if (v && typeof v === 'object') return sortedRecord(v as Record<string, unknown>, sortDeep);
  return v;
}

function orderEntry(e: LockEntry): LockEntry {
  const byPath = (a: ArtifactRef, b: ArtifactRef) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);
  return {
    code: e.code,
    deps: [...e.deps].sort(byPath).map(orderRef),
    params: sortedRecord(e.params ?? {}, sortDeep),
    outs: [...e.outs].sort(byPath).map(orderRef),
    ...(e.metrics && Object.keys(e.metrics).length > 0 ? { metrics: sortedRecord(e.metrics, (x) => x) } : {}),
    ...(e.inputs && Object.keys(e.inputs).length > 0
      ? {
          inputs: sortedRecord(e.inputs, (r) => ({
            hash: r.hash,
            label: r.label,
            ...(r.rev ? { rev: r.rev } : {}),
          })),
        }
      : {}),
  };
}

/**
 * Deterministic YAML: fields in schema order, stages/data/params/metrics keys sorted, deps and
 * outs sorted by path. The same lockfile always gives the same bytes.
 */
export function serializeLockfile(lf: Lockfile): string {
  const ordered = {
    schema: LOCKFILE_SCHEMA,
    data: sortedRecord(lf.data ?? {}, (d) => {
      const { hash, size, nfiles, dir } = d;
      return { hash, size, nfiles, ...(dir ? { dir: true } : {}) };
    }),
    stages: sortedRecord(lf.stages ?? {}, orderEntry),
  };
  // A stage with an entry is not stale, whoever wrote the entry.
  const stale = Object.fromEntries(
    Object.entries(lf.stale ?? {}).filter(([name]) => !(name in ordered.stages)),
  );
  if (Object.keys(stale).length > 0) Object.assign(ordered, { stale: sortedRecord(stale, (r) => r) });
  // Validate what we write with the same schema we read with: never write a file we cannot parse.
  lockfileSchema.parse(ordered);
  const body = stringify(ordered, { lineWidth: 0, aliasDuplicateObjects: false });
  return `# Written by lockstep: what each stage consumed and produced, by content hash.\n${body}`;
}

/** Reads `artifacts.lock.yaml`; a missing file is an empty lockfile. */
export function readLockfile(repo: Repo): Lockfile {
  let text: string;
  try {
    text = fs.readFileSync(repo.lockfilePath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return emptyLockfile();
    throw err;
  }
  // The quick parser gives the same lockfile (test/registry/lockfile-quick.test.ts) at a fifth of
  // the cost, and hands anything it does not accept to parseLockfile for the exact error.
  return parseLockfileQuick(text, 'artifacts.lock.yaml');
}

/** Writes the lockfile atomically (temp file + fsync + rename): readers see the old or the new file. */
export async function writeLockfile(repo: Repo, lf: Lockfile): Promise<void> {
  const text = serializeLockfile(lf);
  let current: string | undefined;
  try {
    current = fs.readFileSync(repo.lockfilePath, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === text) return;
  await writeFileAtomic(repo.lockfilePath, text, { tmpDir: repo.tmpDir });
}

/** How readCommittedLockfile names the file in errors and what fix they end with. */
export interface CommittedLockfileOptions {
  label?: string;
  repair?: string;
}

/** A lockfile as committed: the commit, the blob holding it, and its parsed content. */
export interface CommittedLockfile {
  commit: string;
  /** Git blob id of the file; the same bytes always have the same id. */
  blob: string;
  /** The file's text, as committed. */
  text: string;
  lockfile: Lockfile;
}

/**
 * The lockfile at git revision `rev`, read from git objects through `reader` (no checkout):
 * the one reader of "the lockfile at a revision". Undefined when that commit has no lockfile;
 * an unknown revision is a LockstepError, a malformed lockfile a ConfigError naming `file@rev:line`
 * (or `label:line`: `label` is how errors name the file, default `artifacts.lock.yaml@<rev>`).
 * `repair` is the fix such an error ends with in place of editing the file: a commit cannot be
 * edited, so it says what the caller's user can do (remove the experiment, drop the ref).
 */
export async function readCommittedLockfile(
  reader: GitReader,
  rev: string,
  options: CommittedLockfileOptions = {},
): Promise<CommittedLockfile | undefined> {
  const commit = await reader.resolve(rev);
  const blob = await reader.fileAt(commit, LOCKFILE_NAME);
  if (!blob) return undefined;
  const at = rev === commit ? commit.slice(0, 8) : rev;
  const text = blob.content.toString('utf8');
  const lockfile = parseLockfileQuick(text, options.label ?? `${LOCKFILE_NAME}@${at}`, options.repair);
  return { commit, blob: blob.oid, text, lockfile };
}

/**
 * The lockfile as of git revision `rev`, read from git objects (no checkout). A revision without
 * the file gives an empty lockfile; an unknown revision is an error.
 */
export async function lockfileAtRev(repo: Repo, rev: string): Promise<Lockfile> {
  const { withGitReader } = await import('./git-reader.ts');
  const found = await withGitReader(repo.root, (reader) => readCommittedLockfile(reader, rev));
  return found?.lockfile ?? emptyLockfile();
}
