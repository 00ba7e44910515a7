/**
 * `promotion/<env>.yaml`: one environment's policy. One schema, used to parse, to write and to
 * generate `promotion/policy.schema.json` for editors.
 */
import path from 'node:path';
import { z } from 'zod';
import { thresholdSchema } from '../threshold-schema.ts';
import { ConfigError } from '../errors.ts';
import { parseYamlSource, quickYamlValue, readConfigText, validateYaml, type Rule } from '../yaml-source.ts';

/** The fixed promotion order. */
export const ENVIRONMENTS = ['dev', 'staging', 'prod'] as const;
export type EnvironmentName = (typeof ENVIRONMENTS)[number];

/** `bq://project.dataset.table` (the dataset must exist; Vertex creates the table). */
export const BQ_TABLE = /^bq:\/\/([a-z0-9.:-]+)\.([A-Za-z0-9_]{1,1024})\.([A-Za-z0-9_-]{1,1024})$/;

export const requestLoggingSchema = z
  .object({
    /** Where Vertex AI writes each sampled request and response, `bq://project.dataset.table`. */
    table: z.string().regex(BQ_TABLE, 'expected bq://project.dataset.table'),
    /** Fraction of requests logged. */
    sampling_rate: z.number().gt(0).max(1).default(1),
  })
  .strict();

/** A Vertex AI Model Monitoring job on the environment's endpoint (ModelDeploymentMonitoringJob). */
export const vertexMonitoringSchema = z
  .object({
    /** Who gets the alert e-mails. */
    email: z.array(z.email()).min(1),
    /** Training-serving skew threshold per feature (Jensen-Shannon / L-infinity, as Vertex computes). */
    skew_threshold: z.number().gt(0).max(1).default(0.3),
    /** Prediction drift threshold per feature. */
    drift_threshold: z.number().gt(0).max(1).default(0.3),
    /** Fraction of requests the job samples. */
    sample_rate: z.number().gt(0).max(1).default(1),
    /** Hours between monitoring runs (Vertex allows 1 to 24). */
    interval_hours: z.number().int().min(1).max(24).default(1),
  })
  .strict();

export type VertexMonitoring = z.infer<typeof vertexMonitoringSchema>;

export const endpointTargetSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('local'),
      /** Port for `lockstep serve` (0 = any free port). */
      port: z.number().int().min(0).max(65535).default(0),
    })
    .strict(),
  z
    .object({
      kind: z.literal('vertex'),
      project: z.string().min(1),
      region: z.string().min(1).default('us-central1'),
      /** Numeric endpoint id, or a display name to create on first deploy. */
      endpoint: z.string().min(1),
      /** Parent model resource name for new versions (projects/.../models/...), or a display name. */
      model: z.string().min(1),
      machine_type: z.string().default('n1-standard-2'),
      min_replicas: z.number().int().min(1).default(1),
      max_replicas: z.number().int().min(1).default(1),
      /** Serving container image (the Dockerfile in this repo, pushed to Artifact Registry). */
      image: z.string().min(1),
      /**
       * The endpoint's request-response logging (predictRequestResponseLoggingConfig) to a
       * BigQuery table; `lockstep monitor` and `canary reconcile` read their window from it.
       */
      request_logging: requestLoggingSchema.optional(),
    })
    .strict(),
]);

export const canaryAnalysisSchema = z
  .object({
    /** Largest allowed canary error rate (errors / requests). */
    max_error_rate: z.number().min(0).max(1).default(0.01),
    /** Largest allowed canary p99 latency in milliseconds. */
    max_p99_ms: z.number().positive().default(250),
    /** Largest allowed L-infinity distance between canary and stable predicted-class distributions. */
    max_divergence: z.number().min(0).max(1).default(0.25),
    /** Canary requests needed before a step can be judged; fewer means "hold". */
    min_requests: z.number().int().min(0).default(50),
    /**
     * Paired requests (the stable model answers each canary request too, logged beside it): the
     * fraction of the stable-vs-stable agreement of predicted classes the candidate must keep.
     * A candidate significantly below it is rolled back.
     */
    min_agreement: z.number().min(0).max(1).default(0.7),
    /** Paired requests: largest allowed mean shift of one class's score against stable. */
    max_score_shift: z.number().min(0).max(1).default(0.2),
    /** Significance level of every test (agreement, score shift, class distribution, error rate, latency). */
    alpha: z.number().gt(0).lt(1).default(0.01),
    /**
     * Power the class-distribution, error-rate and latency tests must have to see `min_effect`
     * before a step passes; with fewer canary requests the step holds and says how many more.
     */
    power: z.number().gt(0).lt(1).default(0.8),
    /**
     * Smallest differences from stable worth a rollback: a significant difference smaller than
     * this passes, and the power calculation is for a difference this large.
     */
    min_effect: z
      .object({
        /** L-infinity distance between canary and stable predicted-class shares (chi-square test). */
        class_share: z.number().gt(0).max(1).default(0.1),
        /** Error rate above stable's, absolute (one-sided two-proportion test). */
        error_rate: z.number().gt(0).max(1).default(0.02),
        /** P(a canary request is slower than a stable one), 0.5 = no difference (Mann-Whitney U). */
        latency_auc: z.number().gt(0.5).max(1).default(0.6),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** A canary step: a traffic percentage, or `shadow` (the candidate sees every request, answers none). */
export const canaryStepSchema = z.union([z.number().int().min(1).max(100), z.literal('shadow')]);
export type CanaryStep = z.infer<typeof canaryStepSchema>;

export const canarySchema = z
  .object({
    /**
     * Canary traffic percentages, in order; the last must be 100. A first step `shadow` mirrors
     * every request to the candidate without answering with it (e.g. [shadow, 10, 25, 50, 100]).
     */
    steps: z
      .array(canaryStepSchema)
      .min(1)
      .default([10, 25, 50, 100])
      .refine((s) => s[s.length - 1] === 100, 'the last canary step must be 100')
      .refine((s) => s.every((v, i) => v !== 'shadow' || i === 0), 'only the first canary step can be shadow')
      .refine(
        // A misplaced `shadow` is the rule above's error alone, not also a decreasing step.
        (s) =>
          s.every((v, i) => i === 0 || v === 'shadow' || s[i - 1] === 'shadow' || v > (s[i - 1] as number)),
        'canary steps must increase',
      ),
    analysis: canaryAnalysisSchema.prefault({}),
  })
  .strict();

export const servingPolicySchema = z
  .object({
    /**
     * Audio whose input checks (against the answering model's training schema) find an error
     * anomaly: `reject` answers 400 / lists it in batch errors.jsonl; `flag` predicts anyway and
     * reports the anomalies with the prediction and in the logs. Unreadable or empty clips are
     * refused either way.
     */
    on_error_anomaly: z.enum(['reject', 'flag']).default('reject'),
    /** `lockstep monitor` alerts when the share of requests with one anomaly kind passes this. */
    max_anomaly_rate: z.number().min(0).max(1).default(0.05),
    /** Per-kind overrides of `max_anomaly_rate`, e.g. { clipped: 0.2 }. */
    anomaly_rates: z.record(z.string(), z.number().min(0).max(1)).default({}),
  })
  .strict();

export type ServingPolicy = z.infer<typeof servingPolicySchema>;

export const policySchema = z
  .object({
    /** Git branch holding this environment's state. */
    branch: z.string().min(1),
    endpoint: endpointTargetSchema.default({ kind: 'local', port: 0 }),
    /**
     * Gate thresholds for this environment (override params.yaml `gate.thresholds`). Omit the key to
     * use params.yaml's; an empty list is refused (it would gate nothing).
     */
    gate: z
      .object({ thresholds: z.array(thresholdSchema).min(1).optional() })
      .strict()
      .prefault({}),
    canary: canarySchema.prefault({}),
    /** How the endpoint treats inputs its model's training schema refuses, and when monitoring alerts. */
    serving: servingPolicySchema.prefault({}),
    /** `true`: deploy may retrain when artifacts are missing; `false`: pinned artifacts must be in the remote. */
    allow_retrain: z.boolean().default(false),
    /** Remote URL for this environment's artifacts (defaults to the repository's remote). */
    remote: z.string().optional(),
    /** Where this environment's prediction logs are collected for monitoring (a folder or gs:// prefix). */
    logs: z.string().optional(),
    /** Monitoring may dispatch retraining automatically when drift is detected. */
    auto_retrain: z.boolean().default(false),
    /**
     * Monitoring on the serving platform: `vertex:` keeps a Vertex AI Model Monitoring job on a
     * Vertex endpoint (created, updated, and deleted when the section is removed).
     */
    monitoring: z.object({ vertex: vertexMonitoringSchema.optional() }).strict().optional(),
    /** GitHub environment name used for deployments (required reviewers are configured there). */
    github_environment: z.string().optional(),
  })
  .strict();

export type Policy = z.infer<typeof policySchema>;

/**
 * The gate thresholds for an environment: its policy's `gate.thresholds` when the policy sets
 * them, else the given params.yaml `gate.thresholds`. The one rule the pipeline gate, the deploy
 * gate and promotion all use.
 */
export function environmentThresholds(
  env: string,
  policy: Policy | undefined,
  fromParams: z.infer<typeof thresholdSchema>[],
): { thresholds: z.infer<typeof thresholdSchema>[]; source: string } {
  if (policy?.gate.thresholds) return { thresholds: policy.gate.thresholds, source: `promotion/${env}.yaml` };
  return { thresholds: fromParams, source: 'params.yaml gate.thresholds' };
}

/** Rules across keys, each returning every problem it finds. */
const POLICY_RULES: Rule<Policy>[] = [
  function vertexMonitoringNeedsVertex(p) {
    if (!p.monitoring?.vertex || p.endpoint.kind === 'vertex') return [];
    return [
      {
        path: ['monitoring', 'vertex'],
        message: `monitoring.vertex: needs a Vertex AI endpoint, got endpoint.kind "${p.endpoint.kind}". Remove monitoring.vertex (lockstep monitor covers the local endpoint) or set endpoint.kind: vertex`,
      },
    ];
  },
  function replicasInOrder(p) {
    if (p.endpoint.kind !== 'vertex' || p.endpoint.min_replicas <= p.endpoint.max_replicas) return [];
    return [
      {
        path: ['endpoint', 'max_replicas'],
        message: `endpoint.max_replicas: must be >= endpoint.min_replicas (${p.endpoint.min_replicas}), got ${p.endpoint.max_replicas}. Raise max_replicas or lower min_replicas`,
      },
    ];
  },
];

/** Parses a policy file's text; every problem at once, each naming the file, line and key. */
export function parsePolicy(text: string, file: string): Policy {
  // One command reads each environment's policy several times (its branch, its endpoint, its
  // gate): the same text parses to the same policy, so it is parsed once per process and each
  // caller gets its own copy.
  const key = `${file}\0${text}`;
  const seen = parsedPolicies.get(key);
  if (seen) return structuredClone(seen);
  const policy = parsePolicyText(text, file);
  parsedPolicies.set(key, policy);
  return structuredClone(policy);
}

const parsedPolicies = new Map<string, Policy>();

function parsePolicyText(text: string, file: string): Policy {
  // A well-formed policy (nearly always) is built with js-yaml; anything it, the schema or a rule
  // does not accept goes the full way below, which words the error with the file's lines.
  const quick = quickYamlValue(text);
  if (quick) {
    const result = policySchema.safeParse(quick.value ?? {});
    if (result.success && POLICY_RULES.every((rule) => rule(result.data).length === 0)) return result.data;
  }
  const parsed = parseYamlSource(text, file);
  return validateYaml(
    { ...parsed, value: parsed.value ?? {} },
    policySchema,
    { suffix: ' (see promotion/policy.schema.json)' },
    POLICY_RULES,
  );
}

/** Reads `promotion/<env>.yaml` from a repository root. */
export async function readPolicy(root: string, env: string): Promise<Policy> {
  const file = path.join('promotion', `${env}.yaml`);
  const text = readConfigText(path.join(root, file), file);
  if (text === undefined)
    throw new ConfigError(
      `${file}: missing. Create it (see promotion/dev.yaml) or choose one of: ${ENVIRONMENTS.join(', ')}.`,
    );
  return parsePolicy(text, file);
}

/** The environment before `env` in the promotion order, or undefined for the first. */
export function previousEnvironment(env: EnvironmentName): EnvironmentName | undefined {
  const i = ENVIRONMENTS.indexOf(env);
  return i > 0 ? ENVIRONMENTS[i - 1] : undefined;
}
