/**
 * Git → Vertex AI Model Registry: what each environment's branch pins is what its alias names.
 * `EnvironmentMirror.moveTo` is called wherever lockstep moves an environment branch (promotion,
 * rollback, a canary's revert) and after a canary pass (a merged pull request moved the branch
 * on GitHub): it makes sure the model's version exists (uploaded once per model hash, labelled
 * with commit, data hash and gate verdict) and carries its evaluation, then moves the aliases in
 * one mergeVersionAliases call and hands back an `undo` for when the branch move fails after it.
 * `checkVertexRegistry` reports every disagreement, one line each, and repairs them from git.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Output } from '../output.ts';
import type { Repo } from '../repo.ts';
import type { Remote } from '../store/remote.ts';
import type { ArtifactRef } from '../types.ts';
import { UsageError } from '../errors.ts';
import { ENVIRONMENTS, readPolicy } from '../environment/policy.ts';
import { environmentBranch, revParse } from '../environment/refs.ts';
import { metricsOf } from '../registry/registry.ts';
import { modelOf } from '../environment/model.ts';
import { readLockfileAt } from '../environment/revision.ts';
import { findArtifact, openArtifact } from '../registry/fetch.ts';
import { PATHS } from '../paths.ts';
import type { ModelRef } from '../serving/endpoint.ts';
import type { VertexEndpoint } from './vertex.ts';
import type { EvaluationInput, RegistryVersion, VertexRegistry } from './vertex-registry.ts';
import { environmentAliases, hashLabels, labelValue } from './vertex-labels.ts';

export interface MirrorOptions {
  /** Vertex AI client options (tests point them at a local fake). */
  vertexClientOptions?: Record<string, unknown>;
  out?: Output;
  /** Where evaluation files come from when they are not in the local cache. */
  remote?: Remote;
}

export interface AliasMove {
  /** True when an alias moved (or a version or evaluation was added). */
  changed: boolean;
  /** One human line: what happened. */
  line: string;
  /** Puts the aliases back where they were. */
  undo(): Promise<void>;
}

const short = (h: string) => h.slice(0, 12);

/** The web address of a commit, when the origin (or the Actions run) names a GitHub repository. */
async function commitUrl(repo: Repo, commit: string): Promise<string | undefined> {
  const server = process.env.GITHUB_SERVER_URL ?? 'https://github.com';
  if (process.env.GITHUB_REPOSITORY) return `${server}/${process.env.GITHUB_REPOSITORY}/commit/${commit}`;
  const url = await promisify(execFile)('git', ['remote', 'get-url', 'origin'], { cwd: repo.root }).then(
    (r) => r.stdout.trim(),
    () => '',
  );
  const m = url.match(/github\.com[:/]([^/]+\/[^/]+?)(?:\.git)?$/);
  return m ? `https://github.com/${m[1]}/commit/${commit}` : undefined;
}

/** The data a lockfile's model was trained on: tracked data first, else the demo corpus. */
function dataHashOf(lockfile: NonNullable<Awaited<ReturnType<typeof readLockfileAt>>>): string | undefined {
  const tracked = Object.keys(lockfile.data).sort()[0];
  if (tracked) return lockfile.data[tracked]!.hash;
  return findArtifact(lockfile, PATHS.demo)?.hash ?? findArtifact(lockfile, PATHS.ingest)?.hash;
}

/** Labels and description of a new version for `model` (read from the lockfile at its commit). */
export async function versionMetadataOf(
  repo: Repo,
  model: ModelRef,
): Promise<{ labels: Record<string, string>; description: string }> {
  const labels: Record<string, string> = {};
  let description = `lockstep out/model ${model.hash}`;
  if (!model.commit) return { labels, description };
  labels['lockstep-commit'] = labelValue(model.commit);
  const lockfile = await readLockfileAt(repo.root, model.commit);
  if (lockfile) {
    labels['lockstep-gate'] = labelValue(metricsOf(lockfile).gate);
    const data = dataHashOf(lockfile);
    if (data) Object.assign(labels, hashLabels('lockstep-data-', data));
  }
  const url = await commitUrl(repo, model.commit);
  description += ` from commit ${model.commit}${url ? `: ${url}` : ''}`;
  return { labels, description };
}

/** What the evaluate stage recorded at `commit`: metrics, confusion matrix, slices when present. */
export async function evaluationAt(
  repo: Repo,
  commit: string,
  options: { remote?: Remote; out?: Output } = {},
): Promise<EvaluationInput | undefined> {
  const lockfile = await readLockfileAt(repo.root, commit);
  const metrics = lockfile ? metricsOf(lockfile).metrics : {};
  if (Object.keys(metrics).length === 0) return undefined;
  const read = async (file: string): Promise<unknown> => {
    try {
      return JSON.parse(
        (await openArtifact(repo, file, { rev: commit, remote: options.remote })).toString('utf8'),
      );
    } catch (err) {
      options.out?.err(
        `${file}@${commit.slice(0, 8)}: not readable (${(err as Error).message.split('\n')[0]})`,
      );
      return undefined;
    }
  };
  const input: EvaluationInput = { commit, metrics };
  const eval_ = lockfile && findArtifact(lockfile, PATHS.eval);
  if (eval_?.dir) {
    const confusion = (await read(`${PATHS.eval}/confusion.json`)) as EvaluationInput['confusion'];
    if (confusion?.labels && confusion.matrix) input.confusion = confusion;
    const slices = slicesOf(await read(`${PATHS.eval}/metrics.json`));
    if (slices.length) input.slices = slices;
  }
  return input;
}

/**
 * Per-slice metrics from the evaluate output's `slices`, when it has them: a list of
 * `{dimension, value, metrics}`, or `{<dimension>: {<value>: {<metric>: n}}}`.
 */
export function slicesOf(doc: unknown): NonNullable<EvaluationInput['slices']> {
  const slices = (doc as { slices?: unknown } | undefined)?.slices;
  const numbers = (o: unknown) =>
    Object.fromEntries(
      Object.entries((o ?? {}) as object).filter(([, v]) => typeof v === 'number'),
    ) as Record<string, number>;
  if (Array.isArray(slices))
    return slices
      .filter((s) => s && typeof s.dimension === 'string' && s.value !== undefined)
      .map((s) => ({ dimension: s.dimension, value: String(s.value), metrics: numbers(s.metrics) }));
  if (slices && typeof slices === 'object')
    return Object.entries(slices).flatMap(([dimension, values]) =>
      Object.entries((values ?? {}) as object).map(([value, m]) => ({
        dimension,
        value,
        metrics: numbers(m),
      })),
    );
  return [];
}

/** The commit and model an environment's branch pins (undefined: no branch, or no model). */
export async function pinOf(
  repo: Repo,
  env: string,
): Promise<{ branch: string; commit: string; model: ArtifactRef } | undefined> {
  const branch = await environmentBranch(repo.root, env);
  const commit =
    (await revParse(repo.root, `refs/heads/${branch}`)) ??
    (await revParse(repo.root, `refs/remotes/origin/${branch}`));
  if (!commit) return undefined;
  const lockfile = await readLockfileAt(repo.root, commit);
  const model = lockfile ? modelOf(lockfile) : undefined;
  return model ? { branch, commit, model } : undefined;
}

/** One environment's aliases on its Vertex AI parent model. */
export class EnvironmentMirror {
  private constructor(
    readonly repo: Repo,
    readonly env: string,
    readonly registry: VertexRegistry,
    private readonly endpoint: VertexEndpoint,
    private readonly options: MirrorOptions,
  ) {}

  /** The mirror of `env`, or undefined when its endpoint is not on Vertex AI. */
  static async open(
    repo: Repo,
    env: string,
    options: MirrorOptions = {},
  ): Promise<EnvironmentMirror | undefined> {
    if (!existsSync(path.join(repo.root, 'promotion', `${env}.yaml`))) return undefined;
    const policy = await readPolicy(repo.root, env);
    if (policy.endpoint.kind !== 'vertex') return undefined;
    // Loaded only here: the client library is heavy and local environments never need it.
    const { openEndpoint } = await import('./open.ts');
    const { VertexRegistry } = await import('./vertex-registry.ts');
    const { endpoint } = await openEndpoint(repo, env, {
      vertexClientOptions: options.vertexClientOptions,
      out: options.out,
      log: false,
    });
    const registry = new VertexRegistry(policy.endpoint, {
      clientOptions: options.vertexClientOptions,
      out: options.out,
    });
    return new EnvironmentMirror(repo, env, registry, endpoint as VertexEndpoint, options);
  }

  async close(): Promise<void> {
    await Promise.all([this.registry.close(), this.endpoint.close()]);
  }

  /** The version holding `model`, uploading it when no version does. */
  async ensureVersion(
    model: ArtifactRef,
    commit: string,
    versions: RegistryVersion[],
  ): Promise<{ version: RegistryVersion; uploaded: boolean }> {
    const found = versions.find((v) => v.hash === model.hash);
    if (found) return { version: found, uploaded: false };
    const made = await this.endpoint.ensureModelVersion({ ...model, commit } as ModelRef);
    const version = (await this.registry.listVersions()).find((v) => v.versionId === made.versionId);
    return { version: version ?? { versionId: made.versionId, aliases: [], labels: {} }, uploaded: true };
  }

  /** Imports the evaluation recorded at `commit` when the version has none; true when it did. */
  async ensureEvaluation(version: RegistryVersion, commit: string): Promise<boolean> {
    if ((await this.registry.listEvaluations(version.versionId)).length > 0) return false;
    const input = await evaluationAt(this.repo, version.commit ?? commit, this.options);
    if (!input) return false;
    await this.registry.importEvaluation(version.versionId, input);
    return true;
  }

  /** Moves this environment's aliases to the version of `model` (pinned at `commit`). */
  async moveTo(model: ArtifactRef, commit: string): Promise<AliasMove> {
    const versions = await this.registry.listVersions();
    const { version, uploaded } = await this.ensureVersion(model, commit, versions);
    // Evaluated first, so a moved alias never names a version without its metrics.
    const evaluated = await this.ensureEvaluation(version, commit);
    const aliases = environmentAliases(this.env);
    const missing = aliases.filter((a) => !version.aliases.includes(a));
    const where = `${this.registry.modelName}@${version.versionId}`;
    const noop = async () => undefined;
    if (missing.length === 0)
      return {
        changed: uploaded || evaluated,
        line: `${this.env}: ${aliases.join(', ')} already on ${where} (model ${short(model.hash)})`,
        undo: noop,
      };
    const before = new Map(missing.map((a) => [a, versions.find((v) => v.aliases.includes(a))?.versionId]));
    await this.registry.mergeAliases(version.versionId, missing);
    return {
      changed: true,
      line: `${this.env}: moved ${missing.join(', ')} to ${where} (model ${short(model.hash)})`,
      undo: async () => {
        const back = new Map<string, string[]>();
        for (const [alias, held] of before) {
          if (held) back.set(held, [...(back.get(held) ?? []), alias]);
          else back.set(version.versionId, [...(back.get(version.versionId) ?? []), `-${alias}`]);
        }
        for (const [versionId, list] of back) await this.registry.mergeAliases(versionId, list);
      },
    };
  }
}

/** Opens the mirror of `env` and moves its aliases to what its branch pins now. */
export async function mirrorEnvironment(
  repo: Repo,
  env: string,
  options: MirrorOptions = {},
): Promise<AliasMove | undefined> {
  const mirror = await EnvironmentMirror.open(repo, env, options);
  if (!mirror) return undefined;
  try {
    const pin = await pinOf(repo, env);
    if (!pin) return undefined;
    return await mirror.moveTo(pin.model, pin.commit);
  } finally {
    await mirror.close();
  }
}

export interface RegistryCheck {
  /** Every disagreement between git and Vertex AI, one line each. */
  drift: string[];
  /** What `fix` did, one line each. */
  fixed: string[];
  /** The environments served on Vertex AI that were compared. */
  checked: string[];
}

/**
 * Compares each Vertex-served environment's branch with the registry: the environment's alias
 * (and `default` for prod) on a version of another model or on none, no version for the pinned
 * model, and lockstep versions with no evaluation. With `fix`, repairs each from git.
 */
export async function checkVertexRegistry(
  repo: Repo,
  options: MirrorOptions & { fix?: boolean; envs?: string[] } = {},
): Promise<RegistryCheck> {
  const drift: string[] = [];
  const fixed: string[] = [];
  const fixHint = 'Run lockstep registry check --vertex --fix.';
  const seen = new Map<string, { mirror: EnvironmentMirror; commits: Map<string, string> }>();
  const mirrors: EnvironmentMirror[] = [];
  const checked: string[] = [];
  const envs = options.envs ?? [...ENVIRONMENTS];
  try {
    for (const env of envs) {
      const mirror = await EnvironmentMirror.open(repo, env, options);
      if (!mirror) continue;
      mirrors.push(mirror);
      checked.push(env);
      const pin = await pinOf(repo, env);
      const model = mirror.registry.modelName;
      const group = seen.get(model) ?? { mirror, commits: new Map<string, string>() };
      seen.set(model, group);
      if (!pin) continue;
      group.commits.set(pin.model.hash, pin.commit);
      const versions = await mirror.registry.listVersions();
      const version = versions.find((v) => v.hash === pin.model.hash);
      const problems: string[] = [];
      if (!version)
        problems.push(
          `${env}: no version of ${model} holds the model ${pin.branch} pins "${short(pin.model.hash)}". ${fixHint}`,
        );
      for (const alias of environmentAliases(env)) {
        const holder = versions.find((v) => v.aliases.includes(alias));
        if (holder && holder === version) continue;
        problems.push(
          holder
            ? `${env}: alias "${alias}" is on version ${holder.versionId} (model ${holder.hash ? short(holder.hash) : 'unknown'}), but ${pin.branch} pins model "${short(pin.model.hash)}". ${fixHint}`
            : `${env}: alias "${alias}" is on no version of ${model}; ${pin.branch} pins model "${short(pin.model.hash)}". ${fixHint}`,
        );
      }
      drift.push(...problems);
      if (problems.length && options.fix) fixed.push((await mirror.moveTo(pin.model, pin.commit)).line);
    }
    // Every version lockstep uploaded carries its evaluation.
    for (const [model, { mirror, commits }] of seen) {
      for (const v of await mirror.registry.listVersions()) {
        if (!v.hash || (await mirror.registry.listEvaluations(v.versionId)).length > 0) continue;
        const commit = v.commit ?? commits.get(v.hash);
        drift.push(
          `${model}@${v.versionId}: no model evaluation for model "${short(v.hash)}". ${commit ? fixHint : 'It has no lockstep-commit label: import its evaluation by hand or delete the version.'}`,
        );
        if (options.fix && commit && (await mirror.ensureEvaluation(v, commit)))
          fixed.push(`${model}@${v.versionId}: imported the evaluation of commit ${commit.slice(0, 8)}`);
      }
    }
  } finally {
    await Promise.all(mirrors.map((m) => m.close()));
  }
  // Nothing compared is not agreement: say so rather than report a registry in line with git.
  if (checked.length === 0)
    throw new UsageError(
      options.envs
        ? `--env: not served on Vertex AI "${envs.join(', ')}". Set endpoint.kind: vertex in promotion/<env>.yaml, or name an environment that is.`
        : `promotion/<env>.yaml: no environment is served on Vertex AI "${envs.join(', ')}". Set endpoint.kind: vertex in an environment's policy to mirror it.`,
    );
  return { drift, fixed, checked };
}
