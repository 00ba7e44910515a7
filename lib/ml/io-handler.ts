/**
 * A filesystem `tf.io.IOHandler`: the `file://` handler exists only in tfjs-node, so models are
 * saved and loaded through this one on every backend. Layout is the standard TensorFlow.js one
 * (`model.json` with a weights manifest pointing at `weights.bin`), so other tools read it too.
 */
import { mkdir, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../atomic.ts';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.ts';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

/** Joins tfjs weight data (one buffer or several) into one buffer. */
function joinWeights(data: tf.io.WeightData | undefined): Uint8Array {
  if (data === undefined) return new Uint8Array(0);
  return new Uint8Array(tf.io.CompositeArrayBuffer.join(data));
}

/** An IOHandler that saves to and loads from the directory `dir`. */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      if (artifacts.modelTopology instanceof ArrayBuffer) {
        throw new Error('fileSystemHandler: binary model topology is not supported');
      }
      await mkdir(dir, { recursive: true });
      const weights = joinWeights(artifacts.weightData);
      const modelJson = {
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [`./${WEIGHTS_BIN}`], weights: artifacts.weightSpecs ?? [] }],
      };
      // Weights first: a model.json never points at weights that are not there yet.
      await writeFileAtomic(path.join(dir, WEIGHTS_BIN), weights);
      await writeFileAtomic(path.join(dir, MODEL_JSON), JSON.stringify(modelJson, null, 2) + '\n');
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(0),
          modelTopologyType: 'JSON',
          modelTopologyBytes: JSON.stringify(artifacts.modelTopology).length,
          weightSpecsBytes: JSON.stringify(artifacts.weightSpecs ?? []).length,
          weightDataBytes: weights.byteLength,
        },
      };
    },

    async load(): Promise<tf.io.ModelArtifacts> {
      const jsonPath = path.join(dir, MODEL_JSON);
      let parsed: {
        format?: string;
        generatedBy?: string;
        convertedBy?: string | null;
        modelTopology: object;
        weightsManifest: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
      };
      try {
        parsed = JSON.parse(await readFile(jsonPath, 'utf8'));
      } catch (err) {
        throw new ConfigError(
          `${jsonPath}: unreadable model (${(err as Error).message.split('\n')[0]}). Re-run the train stage.`,
        );
      }
      const weightSpecs: tf.io.WeightsManifestEntry[] = [];
      const buffers: Uint8Array[] = [];
      for (const group of parsed.weightsManifest ?? []) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(await readFile(path.join(dir, p)));
      }
      const total = buffers.reduce((s, b) => s + b.byteLength, 0);
      const weightData = new Uint8Array(total);
      let off = 0;
      for (const b of buffers) {
        weightData.set(b, off);
        off += b.byteLength;
      }
      return {
        modelTopology: parsed.modelTopology,
        format: parsed.format,
        generatedBy: parsed.generatedBy,
        convertedBy: parsed.convertedBy ?? undefined,
        weightSpecs,
        weightData: weightData.buffer,
      };
    },
  };
}
