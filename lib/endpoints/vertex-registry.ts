/**
 * The Vertex AI Model Registry as a mirror of git: one version of the parent model per model hash
 * (labels carry the model hash, the commit that produced it, its data hash and gate verdict), the
 * environment aliases `dev`, `staging`, `prod` (and `default`, which follows `prod`) on the
 * version each environment's branch pins, and the evaluate stage's metrics imported as a model
 * evaluation (classification_metrics_1.0.0.yaml) with per-slice evaluations when the evaluate
 * output has slices. Aliases move with `mergeVersionAliases`, which moves an alias off whatever
 * version held it, so one call per environment changes the registry atomically.
 */
import { v1, helpers } from '@google-cloud/aiplatform';
import { LockstepError } from '../errors.ts';
import type { Output } from '../output.ts';
import type { VertexTarget } from './vertex.ts';
import { hashFromLabels } from './vertex-labels.ts';

export const CLASSIFICATION_METRICS_SCHEMA =
  'gs://google-cloud-aiplatform/schema/modelevaluation/classification_metrics_1.0.0.yaml';

/** A version of the parent model as lockstep reads it. */
export interface RegistryVersion {
  versionId: string;
  aliases: string[];
  labels: Record<string, string>;
  /** The model hash from the labels (undefined for versions lockstep did not upload). */
  hash?: string;
  /** The commit from the labels. */
  commit?: string;
}

/** What the evaluate stage recorded for one model, in the shape the registry imports. */
export interface EvaluationInput {
  commit: string;
  metrics: Record<string, number>;
  confusion?: { labels: string[]; matrix: number[][] };
  slices?: { dimension: string; value: string; metrics: Record<string, number> }[];
}

export interface VertexRegistryOptions {
  clientOptions?: Record<string, unknown>;
  out?: Output;
}

/**
 * The evaluation body for classification_metrics_1.0.0.yaml. The confusion matrix rows are
 * `{row: [...]}` objects as the schema defines them: the bare arrays of arrays the REST reference
 * shows are rejected with `400 Invalid Metrics Format` (googleapis/python-aiplatform#5570).
 * Metrics the schema has no field for (MCC, per-class scores) go to `metadata`.
 */
export function classificationMetrics(
  metrics: Record<string, number>,
  confusion?: EvaluationInput['confusion'],
): Record<string, unknown> {
  const confidence: Record<string, number> = { confidenceThreshold: 0, maxPredictions: 1 };
  const put = (key: string, from: string) => {
    if (typeof metrics[from] === 'number') confidence[key] = metrics[from];
  };
  put('precision', 'precision_macro');
  put('recall', 'recall_macro');
  put('f1Score', 'f1_macro');
  put('f1ScoreMacro', 'f1_macro');
  // Single-label top-1: micro precision, recall and F1 all equal the accuracy.
  put('precisionAt1', 'accuracy');
  put('recallAt1', 'accuracy');
  put('f1ScoreAt1', 'accuracy');
  put('f1ScoreMicro', 'accuracy');
  return {
    ...(typeof metrics.roc_auc_macro === 'number' ? { auRoc: metrics.roc_auc_macro } : {}),
    confidenceMetrics: [confidence],
    ...(confusion
      ? {
          confusionMatrix: {
            annotationSpecs: confusion.labels.map((l) => ({ id: l, displayName: l })),
            rows: confusion.matrix.map((row) => ({ row })),
          },
        }
      : {}),
  };
}

const isNotFound = (err: unknown) => [5, 404].includes((err as { code?: number }).code ?? -1);

export class VertexRegistry {
  readonly target: VertexTarget;
  private readonly models: InstanceType<typeof v1.ModelServiceClient>;
  private readonly options: VertexRegistryOptions;

  constructor(target: VertexTarget, options: VertexRegistryOptions = {}) {
    this.target = target;
    this.options = options;
    this.models = new v1.ModelServiceClient({
      apiEndpoint: `${target.region}-aiplatform.googleapis.com`,
      ...options.clientOptions,
    });
  }

  /** The parent model's resource name. */
  get modelName(): string {
    return this.target.model.startsWith('projects/')
      ? this.target.model
      : `projects/${this.target.project}/locations/${this.target.region}/models/${this.target.model}`;
  }

  close(): Promise<void> {
    return this.models.close();
  }

  private wrap(what: string, err: unknown): LockstepError {
    if (err instanceof LockstepError) return err;
    const code = (err as { code?: number }).code;
    const msg = (err as Error).message?.split('\n')[0] ?? String(err);
    const fix =
      code === 7 || code === 403
        ? 'Give the service account roles/aiplatform.user on the project (aiplatform.models.update).'
        : 'Check endpoint.model in promotion/<env>.yaml and your Google Cloud permissions.';
    return new LockstepError(`${this.modelName}: vertex ${what}: ${msg}. ${fix}`, { cause: err });
  }

  /**
   * Every version of the parent model (the client follows page tokens; the service picks the page
   * size); none when the model does not exist.
   */
  async listVersions(): Promise<RegistryVersion[]> {
    let models;
    try {
      [models] = await this.models.listModelVersions({ name: this.modelName }, { autoPaginate: true });
    } catch (err) {
      if (isNotFound(err)) return [];
      throw this.wrap('listModelVersions', err);
    }
    return models.map((m) => {
      const labels = (m.labels ?? {}) as Record<string, string>;
      const hash = hashFromLabels('lockstep-', labels);
      const commit = labels['lockstep-commit'];
      return {
        versionId: m.versionId!,
        aliases: [...(m.versionAliases ?? [])],
        labels,
        ...(hash ? { hash } : {}),
        ...(commit ? { commit } : {}),
      };
    });
  }

  /** Adds `aliases` to a version (`-name` removes one); the service takes them off other versions. */
  async mergeAliases(versionId: string, aliases: string[]): Promise<void> {
    try {
      await this.models.mergeVersionAliases({
        name: `${this.modelName}@${versionId}`,
        versionAliases: aliases,
      });
    } catch (err) {
      throw this.wrap(`mergeVersionAliases ${aliases.join(',')} on version ${versionId}`, err);
    }
  }

  /** The names of a version's evaluations. */
  async listEvaluations(versionId: string): Promise<string[]> {
    try {
      const [evals] = await this.models.listModelEvaluations(
        { parent: `${this.modelName}@${versionId}` },
        { autoPaginate: true },
      );
      return evals.map((e) => e.name!);
    } catch (err) {
      throw this.wrap(`listModelEvaluations of version ${versionId}`, err);
    }
  }

  /** Imports the evaluate stage's metrics (and slices) to a version; returns the evaluation name. */
  async importEvaluation(versionId: string, input: EvaluationInput): Promise<string> {
    const parent = `${this.modelName}@${versionId}`;
    let name: string;
    try {
      const [ev] = await this.models.importModelEvaluation({
        parent,
        modelEvaluation: {
          displayName: `lockstep-${input.commit.slice(0, 12)}`,
          metricsSchemaUri: CLASSIFICATION_METRICS_SCHEMA,
          metrics: helpers.toValue(classificationMetrics(input.metrics, input.confusion)),
          metadata: helpers.toValue({ commit: input.commit, metrics: input.metrics }),
          ...(input.slices?.length
            ? { sliceDimensions: [...new Set(input.slices.map((s) => s.dimension))] }
            : {}),
        },
      });
      name = ev.name!;
    } catch (err) {
      throw this.wrap(`importModelEvaluation to version ${versionId}`, err);
    }
    if (input.slices?.length) {
      try {
        await this.models.batchImportModelEvaluationSlices({
          parent: name,
          modelEvaluationSlices: input.slices.map((s) => ({
            slice: { dimension: s.dimension, value: s.value },
            metricsSchemaUri: CLASSIFICATION_METRICS_SCHEMA,
            metrics: helpers.toValue(classificationMetrics(s.metrics)),
          })),
        });
      } catch (err) {
        throw this.wrap(`batchImportModelEvaluationSlices to ${name}`, err);
      }
    }
    return name;
  }
}
