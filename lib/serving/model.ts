/**
 * What the server needs from a trained model, and the default loader: an adapter over the model
 * engineer's `loadModelDir` (`lib/ml/model.ts`), which runs the saved transform with the same
 * code as training and predicts with TensorFlow.js. The loader is injectable so the server can be
 * exercised with any model directory format (tests use a small fixture model).
 */
import type { DecodedAudio } from '../audio/wav.ts';
import type { InputChecks } from '../validation/schema.ts';
import { loadModelDir } from '../ml/model.ts';
import { normalizeSummary } from '../ml/transform.ts';

export interface Prediction {
  label: string;
  scores: Record<string, number>;
  /** Raw (unnormalized) summary features, for the prediction logs. */
  summary: number[];
}

export interface ServingModel {
  /** Hash of the weights (`LoadedModel.id`). */
  id: string;
  labels: string[];
  /** Length of the raw summary feature vector a `features` instance must have. */
  featureDim: number;
  /** Runs decode → downmix → resample → frame → features → summary → scale → predict. */
  predictAudio(audio: DecodedAudio): Prediction;
  /** Predicts from a raw (unnormalized) summary vector; normalization is the model's transform. */
  predictFeatures(raw: Float32Array): Prediction;
  /**
   * What audio instances are checked against: the model directory's `schema.json` (attached by
   * `loadWithInputChecks` when a model is loaded from a directory). Absent: the default limits.
   */
  inputChecks?: InputChecks;
}

/**
 * Where a worker thread finds a loader: a module URL and the name of its export. A thread cannot
 * be handed a function, so a loader that shadow traffic may use carries this as `ref`; the
 * default loader needs none.
 */
export interface LoaderRef {
  module: string;
  export: string;
}

/** Loads the model directory at `dir`. */
export type ModelLoader = ((dir: string) => Promise<ServingModel>) & { ref?: LoaderRef };

/**
 * Default loader: `loadModelDir` from `lib/ml/model.ts`. Raw `features` instances are scaled
 * with the transform's `normalizeSummary`, so both instance kinds share the training code path.
 */
export const loadServingModel: ModelLoader = async (dir) => {
  const loaded = await loadModelDir(dir);
  const t = loaded.transform;
  return {
    id: loaded.id,
    labels: loaded.labels,
    featureDim: t.featureNames.length,
    predictAudio: (audio) => loaded.predictAudio(audio),
    predictFeatures: (raw) => {
      const p = loaded.predictSummary(normalizeSummary(t, raw));
      return { ...p, summary: Array.from(raw) };
    },
  };
};
