/**
 * What the server needs from a trained model, and the default loader: an adapter over the model
 * engineer's `loadModelDir` (`lib/ml/model.ts`), which runs the saved transform with the same
 * code as training and predicts with TensorFlow.js. The loader is injectable so the server can be
 * exercised with any model directory format (tests use a small fixture model).
 */
import type { DecodedAudio } from '../audio/wav.ts';

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
}

/** Loads the model directory at `dir`. */
export type ModelLoader = (dir: string) => Promise<ServingModel>;

/** Shape of `lib/ml/model.ts`'s `LoadedModel` this adapter relies on. */
interface LoadedModelLike {
  id: string;
  labels: string[];
  transform: { mean: number[]; std: number[]; featureNames: string[] };
  predictAudio(audio: DecodedAudio): Prediction;
  predictSummary(normalized: Float32Array): Prediction;
}

/**
 * Default loader: `loadModelDir` from `lib/ml/model.ts`. Raw `features` instances are scaled
 * with the transform's `normalizeSummary` so both instance kinds share the training code path.
 */
export const loadServingModel: ModelLoader = async (dir) => {
  // Specifiers are computed so this module type-checks on its own; the ml modules are loaded once.
  const modelPath = '../ml/model.ts';
  const transformPath = '../ml/transform.ts';
  const { loadModelDir } = (await import(modelPath)) as {
    loadModelDir(dir: string): Promise<LoadedModelLike>;
  };
  const transformMod = (await import(transformPath)) as {
    normalizeSummary?: (t: unknown, raw: Float32Array) => Float32Array;
  };
  const loaded = await loadModelDir(dir);
  const t = loaded.transform;
  const normalize =
    transformMod.normalizeSummary?.bind(transformMod) ??
    ((_t: unknown, raw: Float32Array) => {
      const out = new Float32Array(raw.length);
      for (let i = 0; i < raw.length; i++) out[i] = (raw[i] - t.mean[i]) / (t.std[i] || 1);
      return out;
    });
  return {
    id: loaded.id,
    labels: loaded.labels,
    featureDim: t.featureNames?.length ?? t.mean.length,
    predictAudio: (audio) => loaded.predictAudio(audio),
    predictFeatures: (raw) => {
      const p = loaded.predictSummary(normalize(t, raw));
      return { ...p, summary: Array.from(raw) };
    },
  };
};
