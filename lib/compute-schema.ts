/**
 * The `compute:` section of `.lockstep/config.yaml`: where each stage computes. Where a stage
 * computes is not part of its identity (no key here enters a run-cache key or the lockfile), so
 * this lives in the repository config, not in params.yaml.
 *
 * ```yaml
 * compute:
 *   project: my-project            # or LOCKSTEP_VERTEX_PROJECT
 *   region: us-central1            # or LOCKSTEP_VERTEX_REGION
 *   image: us-docker.pkg.dev/p/r/lockstep@sha256:...   # or LOCKSTEP_IMAGE
 *   service_account: jobs@my-project.iam.gserviceaccount.com
 *   stages:
 *     featurize: { backend: vertex, replicas: 4 }
 *     train: { backend: vertex, machine_type: n1-standard-8, accelerator: { type: NVIDIA_TESLA_T4, count: 1 }, timeout: 3600 }
 *   tune: { backend: vertex, machine_type: n1-standard-8 }   # each trial of lockstep tune, one job each
 * ```
 *
 * How many trials run at once is the study's budget, `tune.parallel` in params.yaml (or
 * `lockstep tune --parallel`): on Vertex AI that many CustomJobs run at the same time.
 */
import { z } from 'zod';

/** Compute Engine machine families Vertex AI custom training accepts, as `<family>-<kind>-<n>`. */
export const MACHINE_TYPE =
  /^cloud-tpu$|^(n1|n2|n2d|e2|c2|c2d|c3|a2|a3|g2|m1)-(standard|highmem|highcpu|highgpu|ultragpu|megagpu|ultramem|megamem)-\d+g?$/;

/** AcceleratorType values of the Vertex AI v1 API usable in custom training. */
export const ACCELERATORS = [
  'NVIDIA_TESLA_K80',
  'NVIDIA_TESLA_P100',
  'NVIDIA_TESLA_V100',
  'NVIDIA_TESLA_P4',
  'NVIDIA_TESLA_T4',
  'NVIDIA_TESLA_A100',
  'NVIDIA_A100_80GB',
  'NVIDIA_L4',
  'NVIDIA_H100_80GB',
  'TPU_V2',
  'TPU_V3',
] as const;

/**
 * Machine types each accelerator attaches to (Vertex AI answers any other pairing with 400
 * `Accelerator "X" is not supported for machine type "Y"`, after the inputs were pushed).
 */
export const ACCELERATOR_MACHINES: Record<
  (typeof ACCELERATORS)[number],
  { prefixes: string[]; example: string }
> = {
  NVIDIA_TESLA_K80: { prefixes: ['n1-'], example: 'n1-standard-8' },
  NVIDIA_TESLA_P100: { prefixes: ['n1-'], example: 'n1-standard-8' },
  NVIDIA_TESLA_V100: { prefixes: ['n1-'], example: 'n1-standard-8' },
  NVIDIA_TESLA_P4: { prefixes: ['n1-'], example: 'n1-standard-8' },
  NVIDIA_TESLA_T4: { prefixes: ['n1-'], example: 'n1-standard-8' },
  NVIDIA_TESLA_A100: { prefixes: ['a2-highgpu-', 'a2-megagpu-'], example: 'a2-highgpu-1g' },
  NVIDIA_A100_80GB: { prefixes: ['a2-ultragpu-'], example: 'a2-ultragpu-1g' },
  NVIDIA_L4: { prefixes: ['g2-'], example: 'g2-standard-8' },
  NVIDIA_H100_80GB: { prefixes: ['a3-highgpu-', 'a3-megagpu-'], example: 'a3-highgpu-8g' },
  TPU_V2: { prefixes: ['cloud-tpu'], example: 'cloud-tpu' },
  TPU_V3: { prefixes: ['cloud-tpu'], example: 'cloud-tpu' },
};

export const stageComputeSchema = z
  .object({
    /** `local` (default): on the machine running repro; `vertex`: a Vertex AI CustomJob. */
    backend: z.enum(['local', 'vertex']).default('local'),
    /** Default n1-standard-4. */
    machine_type: z
      .string()
      .regex(MACHINE_TYPE, {
        message: 'unknown machine type. Use a Compute Engine machine type such as n1-standard-8',
      })
      .optional(),
    accelerator: z
      .object({ type: z.enum(ACCELERATORS), count: z.number().int().min(1).max(16).default(1) })
      .strict()
      .optional(),
    /** Machines for a stage that shards (featurize); default 1. */
    replicas: z.number().int().min(1).max(64).default(1),
    /** Seconds before the job is cancelled; default 86400 (Vertex AI's own default is 7 days). */
    timeout: z.number().int().min(1).optional(),
  })
  .strict();

/**
 * Where each trial of `lockstep tune` computes: one CustomJob per trial on this machine. Trials
 * do not shard (no replicas).
 */
export const tuneComputeSchema = stageComputeSchema.omit({ replicas: true });

export const computeSchema = z
  .object({
    project: z.string().min(1).optional(),
    region: z.string().min(1).optional(),
    /** The repository's image, by digest (`...@sha256:...`). */
    image: z.string().min(1).optional(),
    service_account: z.string().min(1).optional(),
    stages: z.record(z.string(), stageComputeSchema).default({}),
    tune: tuneComputeSchema.optional(),
  })
  .strict();

export type StageCompute = z.infer<typeof stageComputeSchema>;
export type TuneCompute = z.infer<typeof tuneComputeSchema>;
export type ComputeConfig = z.infer<typeof computeSchema>;
