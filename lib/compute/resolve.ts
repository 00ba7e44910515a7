/**
 * Where each stage of a run computes: the `compute:` section of `.lockstep/config.yaml`
 * (lib/compute-schema.ts), environment overrides for the Vertex AI project, region, image and
 * service account (repository variables in the workflows), and `repro --compute local|vertex`.
 * Every problem is found here, before any job is created, as one line naming the key and the fix.
 */
import type { Repo } from '../repo.ts';
import type { StageDef } from '../types.ts';
import { ACCELERATOR_MACHINES, type ComputeConfig, type StageCompute } from '../compute-schema.ts';
import { readConfig } from '../config.ts';
import { ConfigError, UsageError, formatProblem } from '../errors.ts';
import { defaultRemoteUrl } from '../store/remote-config.ts';
import { IMAGE_ENV, pinnedImage } from '../image-ref.ts';

export interface VertexSettings {
  project: string;
  region: string;
  image: string;
  serviceAccount?: string;
  /** The gs:// remote jobs read inputs from and write outputs to. */
  remote: string;
}

export interface ResolvedStageCompute {
  backend: 'local' | 'vertex';
  machineType: string;
  accelerator?: { type: string; count: number };
  replicas: number;
  timeoutSeconds: number;
}

export interface ComputePlan {
  stages: Map<string, ResolvedStageCompute>;
  vertex?: VertexSettings;
}

export const DEFAULT_MACHINE_TYPE = 'n1-standard-4';
const CONFIG = '.lockstep/config.yaml';

function resolveStage(
  c: (Omit<StageCompute, 'replicas'> & { replicas?: number }) | undefined,
  override?: 'local' | 'vertex',
): ResolvedStageCompute {
  return {
    backend: override ?? c?.backend ?? 'local',
    machineType: c?.machine_type ?? DEFAULT_MACHINE_TYPE,
    ...(c?.accelerator ? { accelerator: { type: c.accelerator.type, count: c.accelerator.count } } : {}),
    replicas: c?.replicas ?? 1,
    timeoutSeconds: c?.timeout ?? 86_400,
  };
}

function checkOverride(override: string | undefined): void {
  if (override !== undefined && override !== 'local' && override !== 'vertex') {
    throw new UsageError(
      `--compute: unknown backend "${override}". Use --compute local or --compute vertex.`,
    );
  }
}

/** One accelerator/machine pairing check, for `key` (`compute.stages.train`, `compute.tune`). */
function checkAccelerator(resolved: ResolvedStageCompute, key: string, given: string | undefined): void {
  const accel = resolved.accelerator?.type as keyof typeof ACCELERATOR_MACHINES | undefined;
  const fits = accel ? ACCELERATOR_MACHINES[accel] : undefined;
  if (fits && !fits.prefixes.some((m) => resolved.machineType.startsWith(m))) {
    throw new ConfigError(
      formatProblem(
        `${CONFIG}: ${key}.machine_type`,
        `accelerator ${accel} does not attach to this machine type${given ? '' : ' (the default)'}`,
        resolved.machineType,
        `Set machine_type to a machine type it attaches to (${fits.prefixes.map((m) => m.replace(/-$/, '')).join(', ')}), e.g. ${fits.example}.`,
      ),
    );
  }
}

/**
 * Resolves where `stages` compute. `override` (`repro --compute`) applies to every stage:
 * `local` runs everything here; `vertex` sends every stage to Vertex AI.
 */
export function resolveCompute(repo: Repo, stages: StageDef[], override?: string): ComputePlan {
  checkOverride(override);
  const config = readConfig(repo).compute;
  const names = new Set(stages.map((s) => s.name));
  for (const name of Object.keys(config?.stages ?? {})) {
    if (!names.has(name)) {
      throw new ConfigError(
        formatProblem(
          `${CONFIG}: compute.stages.${name}`,
          'names no stage of the pipeline',
          name,
          `Use one of: ${[...names].join(', ')}.`,
        ),
      );
    }
  }
  const plan: ComputePlan = { stages: new Map() };
  for (const stage of stages) {
    const resolved = resolveStage(config?.stages[stage.name], override as 'local' | 'vertex' | undefined);
    if (resolved.replicas > 1 && !stage.shards) {
      throw new ConfigError(
        formatProblem(
          `${CONFIG}: compute.stages.${stage.name}.replicas`,
          'this stage does not shard',
          String(resolved.replicas),
          'Set replicas: 1 (only stages with a shard/merge, like featurize, split across machines).',
        ),
      );
    }
    checkAccelerator(resolved, `compute.stages.${stage.name}`, config?.stages[stage.name]?.machine_type);
    plan.stages.set(stage.name, resolved);
  }
  if ([...plan.stages.values()].some((s) => s.backend === 'vertex'))
    plan.vertex = resolveVertexSettings(repo, config);
  return plan;
}

/** Where each trial of `lockstep tune` computes (`compute.tune`, or `tune --compute`). */
export function resolveTuneCompute(
  repo: Repo,
  override?: string,
): { compute: ResolvedStageCompute; vertex?: VertexSettings } {
  checkOverride(override);
  const config = readConfig(repo).compute;
  const compute = resolveStage(config?.tune, override as 'local' | 'vertex' | undefined);
  checkAccelerator(compute, 'compute.tune', config?.tune?.machine_type);
  if (compute.backend !== 'vertex') return { compute };
  return { compute, vertex: resolveVertexSettings(repo, config) };
}

/** Project, region, image, service account and the gs:// remote jobs exchange objects through. */
function resolveVertexSettings(repo: Repo, config: ComputeConfig | undefined): VertexSettings {
  const env = process.env;
  const need = (key: string, value: string | undefined, variable: string): string => {
    if (value) return value;
    throw new ConfigError(
      formatProblem(
        `${CONFIG}: compute.${key}`,
        'missing for stages on vertex',
        '',
        `Set compute.${key} or ${variable}${key === 'image' ? ' (the image by digest, ...@sha256:...)' : ''}.`,
      ),
    );
  };
  const remote = defaultRemoteUrl(repo);
  if (!remote?.startsWith('gs://')) {
    throw new ConfigError(
      formatProblem(
        `${CONFIG}: remote`,
        'stages on vertex need a gs:// remote to exchange inputs and outputs',
        remote ?? '',
        'Set remotes.<name>.url to gs://bucket/prefix, or LOCKSTEP_REMOTE.',
      ),
    );
  }
  return {
    project: need('project', env.LOCKSTEP_VERTEX_PROJECT ?? config?.project, 'LOCKSTEP_VERTEX_PROJECT'),
    region: need('region', env.LOCKSTEP_VERTEX_REGION ?? config?.region, 'LOCKSTEP_VERTEX_REGION'),
    // Jobs run the image by digest, never by a mutable tag (the same rule as a Vertex deploy);
    // an empty LOCKSTEP_IMAGE (an unset repository variable) falls back to compute.image.
    image: pinnedImage(
      need('image', env[IMAGE_ENV]?.trim() || config?.image, IMAGE_ENV),
      `${CONFIG}: compute.image`,
      env,
    ),
    ...((env.LOCKSTEP_SERVICE_ACCOUNT ?? config?.service_account)
      ? { serviceAccount: env.LOCKSTEP_SERVICE_ACCOUNT ?? config?.service_account }
      : {}),
    remote,
  };
}
