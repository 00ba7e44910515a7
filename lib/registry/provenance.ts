/**
 * Model provenance: an in-toto Statement v1 with a SLSA Provenance v1 predicate, built from the
 * lockfile at a commit. The subject is the model directory (its path, and its manifest hash as
 * the sha256 digest); the resolved dependencies are the commit, every data hash of the lineage,
 * the params the stages read, and the lock entry of the stage that produced the model. One
 * schema (zod) parses, writes and generates `lib/registry/provenance.schema.json`.
 * `checkProvenance` compares a statement with the lockfile at a ref, offline.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Lockfile } from '../types.ts';
import { canonicalJson } from '../pipeline/fingerprint.ts';
import { ConfigError, LockstepError } from '../errors.ts';
import { resolveRef } from '../environment/refs.ts';
import { withGitReader } from '../git-reader.ts';
import { readCommittedLockfile } from '../lockfile.ts';
import { modelProducerOf } from '../environment/model.ts';
import { lineageOf } from './lineage.ts';
import { DEFAULT_LAYOUT, LOCKFILE, type RegistryLayout } from './registry.ts';
import { parseValue } from '../yaml-source.ts';

export const STATEMENT_TYPE = 'https://in-toto.io/Statement/v1';
export const PREDICATE_TYPE = 'https://slsa.dev/provenance/v1';
/** What "building" means here: the lockstep pipeline recorded in artifacts.lock.yaml. */
export const BUILD_TYPE = 'urn:lockstep:pipeline:v1';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 hex digest');
const digestSet = z.record(z.string().min(1), z.string().min(1));

/** in-toto ResourceDescriptor (the fields lockstep writes; others are allowed and kept). */
const resourceDescriptor = z
  .object({
    name: z.string().min(1),
    uri: z.string().optional(),
    digest: digestSet,
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

export const provenanceSchema = z
  .object({
    _type: z.literal(STATEMENT_TYPE),
    subject: z
      .array(z.object({ name: z.string().min(1), digest: z.object({ sha256: hex64 }).loose() }).loose())
      .min(1),
    predicateType: z.literal(PREDICATE_TYPE),
    predicate: z
      .object({
        buildDefinition: z
          .object({
            buildType: z.string().min(1),
            externalParameters: z.record(z.string(), z.unknown()),
            internalParameters: z.record(z.string(), z.unknown()).optional(),
            resolvedDependencies: z.array(resourceDescriptor),
          })
          .loose(),
        runDetails: z
          .object({
            builder: z.object({ id: z.string().min(1) }).loose(),
            metadata: z.record(z.string(), z.unknown()).optional(),
          })
          .loose(),
      })
      .loose(),
  })
  .loose();

export type Provenance = z.infer<typeof provenanceSchema>;
export type ResourceDescriptor = z.infer<typeof resourceDescriptor>;

/** JSON Schema of the statement lockstep writes (for editors and other verifiers). */
export function provenanceJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(provenanceSchema, { io: 'input' }) as Record<string, unknown>;
}

export interface ProvenanceOptions {
  /** What the user asked for (`prod`, a tag, a commit); recorded as an external parameter. */
  ref?: string;
  /** Builder id (the workflow run's URL in Actions; default `lockstep`). */
  builder?: string;
  /** Invocation id (the workflow run id), recorded in runDetails.metadata. */
  invocationId?: string;
  /** The serving image by digest (`<repository>@sha256:...`), recorded as a resolved dependency. */
  image?: string;
  /** Git URL of the repository, for the commit's `uri`. */
  repositoryUrl?: string;
  layout?: RegistryLayout;
}

const sha256Of = (value: unknown) => createHash('sha256').update(canonicalJson(value)).digest('hex');

/**
 * The materials of the model at `commit`, in a fixed order: commit, data (by path), params, the
 * producing stage's lock entry. The part of a statement `checkProvenance` compares.
 */
export function materialsOf(
  commit: string,
  lockfile: Lockfile,
  options: Pick<ProvenanceOptions, 'layout' | 'repositoryUrl'> = {},
): { subject: Provenance['subject']; materials: ResourceDescriptor[] } {
  const layout = options.layout ?? DEFAULT_LAYOUT;
  const lineage = lineageOf(commit, lockfile, layout);
  const producer = modelProducerOf(lockfile, layout.modelPath);
  if (!producer || !lineage.model)
    throw new LockstepError(
      `${LOCKFILE}: no stage produces ${layout.modelPath} at ${commit.slice(0, 8)}. Choose a commit that trained a model.`,
    );
  const [stage, entry] = producer;
  // The dataset: tracked data, raw deps and the ingest manifest (the lineage's data), and the
  // outs of source stages (no deps: they generate or fetch the data).
  const data: Record<string, string> = { ...lineage.data };
  for (const e of Object.values(lockfile.stages))
    if (e.deps.length === 0) for (const o of e.outs) data[o.path] ??= o.hash;
  const materials: ResourceDescriptor[] = [
    {
      name: 'commit',
      ...(options.repositoryUrl ? { uri: `git+${options.repositoryUrl}@${commit}` } : {}),
      digest: { gitCommit: commit },
    },
    ...Object.entries(data)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([p, hash]) => ({ name: `data:${p}`, digest: { sha256: hash } })),
    { name: 'params', digest: { sha256: sha256Of(lineage.params) }, annotations: { values: lineage.params } },
    {
      name: `lock:${stage}`,
      digest: { sha256: sha256Of(entry) },
      annotations: { code: entry.code, outs: entry.outs.map((o) => ({ path: o.path, sha256: o.hash })) },
    },
  ];
  return { subject: [{ name: layout.modelPath, digest: { sha256: lineage.model } }], materials };
}

/** The provenance statement of the model the lockfile at `commit` pins (pure). */
export function buildProvenance(
  commit: string,
  lockfile: Lockfile,
  options: ProvenanceOptions = {},
): Provenance {
  const { subject, materials } = materialsOf(commit, lockfile, options);
  const image = options.image
    ? [{ name: 'image', uri: options.image, digest: imageDigest(options.image) }]
    : [];
  return provenanceSchema.parse({
    _type: STATEMENT_TYPE,
    subject,
    predicateType: PREDICATE_TYPE,
    predicate: {
      buildDefinition: {
        buildType: BUILD_TYPE,
        externalParameters: { ref: options.ref ?? commit, lockfile: LOCKFILE },
        internalParameters: {},
        resolvedDependencies: [...materials, ...image],
      },
      runDetails: {
        builder: { id: options.builder ?? 'lockstep' },
        ...(options.invocationId ? { metadata: { invocationId: options.invocationId } } : {}),
      },
    },
  });
}

function imageDigest(image: string): Record<string, string> {
  const m = /@sha256:([0-9a-f]{64})$/.exec(image);
  if (!m)
    throw new ConfigError(
      `--image: not pinned by digest "${image}". Pass <repository>@sha256:<digest> (the image build's digest output).`,
    );
  return { sha256: m[1] };
}

/** The statement for the model pinned at `ref` (a commit, branch, tag or environment). */
export async function provenanceAt(
  root: string,
  ref: string,
  options: ProvenanceOptions = {},
): Promise<Provenance> {
  return withGitReader(root, async (reader) => {
    const { commit } = await resolveRef(root, ref, reader);
    const committed = await readCommittedLockfile(reader, commit);
    if (!committed)
      throw new LockstepError(
        `${ref}: no ${LOCKFILE} at ${commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
      );
    return buildProvenance(commit, committed.lockfile, { ref, ...options });
  });
}

/** Parses statement text; a bad statement is one line per problem, naming the file and line. */
export function parseProvenance(text: string, file: string): Provenance {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(
      `${file}: not JSON (${(err as Error).message.split('\n')[0]}). Write it with lockstep provenance <ref> --out ${file}.`,
    );
  }
  return parseValue(provenanceSchema, json, file, {
    text,
    suffix: `, or write it with lockstep provenance <ref> --out ${file}`,
  });
}

/**
 * Compares a statement's subject and materials with those of the lockfile at `commit`: one line
 * per mismatch, naming the field (empty when they match). The runtime parts (builder, image,
 * invocation) are not compared: the lockfile does not hold them.
 */
export function provenanceMismatches(
  statement: Provenance,
  commit: string,
  lockfile: Lockfile,
  options: Pick<ProvenanceOptions, 'layout'> = {},
): string[] {
  const want = materialsOf(commit, lockfile, options);
  const problems: string[] = [];
  const [subject] = statement.subject;
  if (statement.subject.length !== 1)
    problems.push(`subject: ${statement.subject.length} subjects, expected 1`);
  if (subject.name !== want.subject[0].name)
    problems.push(`subject[0].name: "${subject.name}", the lockfile says "${want.subject[0].name}"`);
  if (subject.digest.sha256 !== want.subject[0].digest.sha256)
    problems.push(
      `subject[0].digest.sha256: "${subject.digest.sha256}", the lockfile says "${want.subject[0].digest.sha256}"`,
    );
  const deps = statement.predicate.buildDefinition.resolvedDependencies;
  const have = new Map(deps.map((d) => [d.name, d] as const));
  const field = 'predicate.buildDefinition.resolvedDependencies';
  // A name listed twice would hide a tampered entry behind a matching one (the map keeps the
  // last), and a reader of the statement cannot tell which one counts.
  for (const name of have.keys()) {
    const n = deps.filter((d) => d.name === name).length;
    if (n > 1) problems.push(`${field}[${name}]: listed ${n} times, expected once`);
  }
  for (const m of want.materials) {
    const got = have.get(m.name);
    if (!got) {
      problems.push(`${field}[${m.name}]: missing, the lockfile has it`);
      continue;
    }
    for (const [alg, value] of Object.entries(m.digest)) {
      if (got.digest[alg] !== value)
        problems.push(
          `${field}[${m.name}].digest.${alg}: "${got.digest[alg] ?? ''}", the lockfile says "${value}"`,
        );
    }
    // The annotations (param values, the lock entry's code and outs) are what readers look at.
    if (canonicalJson(got.annotations ?? {}) !== canonicalJson(m.annotations ?? {}))
      problems.push(`${field}[${m.name}].annotations: differ from the lockfile's`);
    have.delete(m.name);
  }
  for (const name of have.keys()) {
    if (name !== 'image') problems.push(`${field}[${name}]: not in the lockfile`);
  }
  return problems;
}

export interface ProvenanceCheck {
  ref: string;
  commit: string;
  /** One line per mismatch; empty when the statement matches. */
  mismatches: string[];
}

/** Checks a statement against the lockfile at `ref`, offline (git only). */
export async function checkProvenance(
  root: string,
  ref: string,
  statement: Provenance,
  options: Pick<ProvenanceOptions, 'layout'> = {},
): Promise<ProvenanceCheck> {
  return withGitReader(root, async (reader) => {
    const { commit } = await resolveRef(root, ref, reader);
    const committed = await readCommittedLockfile(reader, commit);
    if (!committed)
      throw new LockstepError(
        `${ref}: no ${LOCKFILE} at ${commit.slice(0, 8)}. Choose a commit that ran the pipeline.`,
      );
    return { ref, commit, mismatches: provenanceMismatches(statement, commit, committed.lockfile, options) };
  });
}
