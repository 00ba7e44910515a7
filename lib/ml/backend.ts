/**
 * Picks and initialises the TensorFlow.js backend: tfjs-node when its native binding loads, else
 * WebAssembly, else plain JavaScript (cpu). The choice and the reasons for any fallback are
 * returned so the model card and train metrics can record them.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

export type BackendName = 'tensorflow' | 'wasm' | 'cpu';
export type BackendPreference = 'auto' | BackendName;

export interface BackendChoice {
  /** The backend that is active now. */
  name: BackendName;
  requested: BackendPreference;
  /** Why a preferred backend was skipped, one line each ("wasm: ..."). */
  fallbacks: string[];
}

export interface BackendOptions {
  /**
   * The training graph uses tfjs's native convolution gradients. The wasm backend has no
   * Conv2DBackpropFilter kernel, so wasm is skipped for such graphs. (The train stage's cnn1d
   * does not need this: it trains its Conv1D layers as unfold + matMul.)
   */
  needsConvGradients?: boolean;
}

const ORDER: BackendName[] = ['tensorflow', 'wasm', 'cpu'];
let wasmPathsSet = false;

/** Loads tfjs-node (an optional dependency whose native binary may be missing). */
async function tryTensorflow(): Promise<string | undefined> {
  // A computed specifier keeps type-checking and bundling independent of the optional package.
  const specifier = '@tensorflow/tfjs-node';
  try {
    await import(specifier);
  } catch (err) {
    // The reason goes into the model card, so it must not depend on where the repository lives.
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ERR_MODULE_NOT_FOUND'
        ? 'package not installed'
        : firstLine(err).replace(/(\/[^\s'"()]+)+/g, '<path>');
    return `tfjs-node did not load (${why})`;
  }
  return (await activate('tensorflow')) ? undefined : 'tfjs-node loaded but did not initialise';
}

async function tryWasm(): Promise<string | undefined> {
  if (!wasmPathsSet) {
    // In Node the .wasm binaries are read from the package's dist directory on disk.
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('@tensorflow/tfjs-backend-wasm/package.json');
    setWasmPaths(path.join(path.dirname(pkg), 'dist') + path.sep);
    wasmPathsSet = true;
  }
  return (await activate('wasm')) ? undefined : 'wasm backend did not initialise';
}

/** Switches to `name` and checks that a small computation gives the right answer. */
async function activate(name: BackendName): Promise<boolean> {
  try {
    if (!(await tf.setBackend(name))) return false;
    await tf.ready();
    const probe = tf.tidy(() => tf.matMul(tf.tensor2d([1, 2], [1, 2]), tf.tensor2d([3, 4], [2, 1])));
    const [v] = await probe.data();
    probe.dispose();
    return tf.getBackend() === name && v === 11;
  } catch {
    return false;
  }
}

/**
 * Activates the first usable backend at or after `preference` in the order tensorflow → wasm →
 * cpu (`auto` starts at tensorflow). Never throws: cpu always works.
 */
export async function initBackend(
  preference: BackendPreference = 'auto',
  options: BackendOptions = {},
): Promise<BackendChoice> {
  // Production mode: skips debug checks and the cpu backend's "install tfjs-node" console banner.
  tf.enableProdMode();
  const start = preference === 'auto' ? 0 : ORDER.indexOf(preference);
  const fallbacks: string[] = [];
  for (const name of ORDER.slice(start)) {
    if (name === 'cpu') break;
    if (name === 'wasm' && options.needsConvGradients) {
      fallbacks.push('wasm: no convolution gradient kernels (Conv2DBackpropFilter)');
      continue;
    }
    const problem = name === 'tensorflow' ? await tryTensorflow() : await tryWasm();
    if (problem === undefined) return { name, requested: preference, fallbacks };
    fallbacks.push(`${name}: ${problem}`);
  }
  if (!(await activate('cpu'))) throw new Error('cpu backend failed to initialise');
  return { name: 'cpu', requested: preference, fallbacks };
}

/** The active backend's name. */
export function currentBackend(): string {
  return tf.getBackend();
}

function firstLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.split('\n')[0];
}
