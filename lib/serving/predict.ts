/**
 * The prediction core shared by the HTTP server and `lockstep predict`: validates a Vertex AI
 * style request body (`{"instances": [{"audio": <base64 WAV>} | {"features": [...]}]}`), routes
 * it to one deployed model (as Vertex does, a request is answered by a single deployed model),
 * predicts each instance, logs one line per instance and returns the Vertex response shape.
 */
import { AudioDecodeError, type DecodedAudio } from '../audio/wav.ts';
import { decodeRequestWav } from './decode.ts';
import { LockstepError } from '../errors.ts';
import type { PredictResponse } from '../endpoints/types.ts';
import type { PredictionLog, ShadowPrediction } from './logs.ts';
import type { ModelSource, Route } from './router.ts';

/** A request the client must fix: HTTP 400. */
export class BadRequestError extends LockstepError {
  readonly statusCode = 400;
}

/** Nothing can answer (no model deployed, or none with traffic): HTTP 503. */
export class UnavailableError extends LockstepError {
  readonly statusCode = 503;
}

/** The model failed on a valid request: HTTP 500. */
export class ModelFailureError extends LockstepError {
  readonly statusCode = 500;
  readonly deployedModelId: string;
  constructor(deployedModelId: string, message: string, cause?: unknown) {
    super(message, { cause });
    this.deployedModelId = deployedModelId;
  }
}

export interface PredictLimits {
  /** Instances per request (default 32). */
  maxInstances?: number;
  /** Longest accepted clip in seconds (default 30). */
  maxAudioSeconds?: number;
}

type ParsedInstance = { kind: 'audio'; audio: DecodedAudio } | { kind: 'features'; raw: Float32Array };

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

/** Validates and decodes the request body; every problem is a BadRequestError naming the instance. */
export function parseInstances(body: unknown, limits: PredictLimits = {}): ParsedInstance[] {
  const maxInstances = limits.maxInstances ?? 32;
  const maxSeconds = limits.maxAudioSeconds ?? 30;
  if (
    typeof body !== 'object' ||
    body === null ||
    !Array.isArray((body as { instances?: unknown }).instances)
  ) {
    throw new BadRequestError(
      'body: expected {"instances": [...]}. Send {"instances": [{"audio": "<base64 WAV>"}] } or {"instances": [{"features": [...]}]}.',
    );
  }
  const instances = (body as { instances: unknown[] }).instances;
  if (instances.length === 0) throw new BadRequestError('instances: empty list. Send at least one instance.');
  if (instances.length > maxInstances) {
    throw new BadRequestError(
      `instances: too many "${instances.length}". Send at most ${maxInstances} per request.`,
    );
  }
  return instances.map((inst, i) => {
    const where = `instances[${i}]`;
    if (typeof inst !== 'object' || inst === null || Array.isArray(inst)) {
      throw new BadRequestError(
        `${where}: not an object. Send {"audio": "<base64 WAV>"} or {"features": [...]}.`,
      );
    }
    const keys = Object.keys(inst);
    const o = inst as Record<string, unknown>;
    if (keys.length !== 1 || !(keys[0] === 'audio' || keys[0] === 'features')) {
      throw new BadRequestError(
        `${where}: expected exactly one of "audio" or "features", got ${JSON.stringify(keys)}. Send {"audio": "<base64 WAV>"} or {"features": [...]}.`,
      );
    }
    if (keys[0] === 'features') {
      const f = o.features;
      if (
        !Array.isArray(f) ||
        f.length === 0 ||
        !f.every((v) => typeof v === 'number' && Number.isFinite(v))
      ) {
        throw new BadRequestError(
          `${where}.features: not a non-empty list of finite numbers. Send the raw summary feature vector.`,
        );
      }
      return { kind: 'features', raw: Float32Array.from(f as number[]) };
    }
    const a = o.audio;
    if (typeof a !== 'string' || a.length === 0) {
      throw new BadRequestError(`${where}.audio: empty. Send a base64-encoded WAV file.`);
    }
    // Cheap check on the head only: Buffer.from ignores invalid characters silently.
    if (!BASE64.test(a.slice(0, 64))) {
      throw new BadRequestError(`${where}.audio: not base64. Send a base64-encoded WAV file.`);
    }
    let audio: DecodedAudio;
    try {
      audio = decodeRequestWav(Buffer.from(a, 'base64'), `${where}.audio`);
    } catch (err) {
      if (err instanceof AudioDecodeError) throw new BadRequestError(err.message);
      throw err;
    }
    if (audio.length === 0)
      throw new BadRequestError(`${where}.audio: WAV has no samples. Send a non-empty recording.`);
    const seconds = audio.length / audio.sampleRate;
    if (seconds > maxSeconds) {
      throw new BadRequestError(
        `${where}.audio: too long "${seconds.toFixed(1)} s". Send clips of at most ${maxSeconds} s.`,
      );
    }
    return { kind: 'audio', audio };
  });
}

export interface PredictorOptions {
  env: string;
  log?: PredictionLog;
  limits?: PredictLimits;
}

/** Runs requests against a model source. */
export class Predictor {
  readonly source: ModelSource;
  private readonly options: PredictorOptions;

  constructor(source: ModelSource, options: PredictorOptions) {
    this.source = source;
    this.options = options;
  }

  /**
   * Predicts a request body.
   * @throws BadRequestError (400), UnavailableError (503), ModelFailureError (500).
   */
  predict(body: unknown): PredictResponse {
    const started = performance.now();
    let parsed: ParsedInstance[];
    try {
      parsed = parseInstances(body, this.options.limits);
    } catch (err) {
      if (err instanceof BadRequestError) this.logFailure(undefined, 'invalid', started, err.message);
      throw err;
    }
    const route = this.source.pick();
    if (!route) {
      throw new UnavailableError(
        `endpoint ${this.options.env}: no deployed model takes traffic. Deploy one (lockstep canary reconcile --env ${this.options.env}).`,
      );
    }
    const dim = route.model.featureDim;
    for (const [i, p] of parsed.entries()) {
      if (p.kind === 'features' && p.raw.length !== dim) {
        const msg = `instances[${i}].features: wrong shape "${p.raw.length}". Model ${route.deployedModelId} expects ${dim} raw summary features.`;
        this.logFailure(route, 'invalid', started, msg);
        throw new BadRequestError(msg);
      }
    }
    const shadow = this.source.shadowFor?.(route);
    const predictions = parsed.map((p, i) => {
      const t0 = i === 0 ? started : performance.now();
      let pred;
      try {
        pred = p.kind === 'audio' ? route.model.predictAudio(p.audio) : route.model.predictFeatures(p.raw);
      } catch (err) {
        const msg = `deployed model ${route.deployedModelId}: prediction failed (${(err as Error).message?.split('\n')[0]}).`;
        this.logFailure(route, 'error', t0, msg);
        throw new ModelFailureError(route.deployedModelId, `${msg} Check the model's logs.`, err);
      }
      const latencyMs = round3(performance.now() - t0);
      this.options.log?.write({
        time: new Date().toISOString(),
        env: this.options.env,
        deployedModelId: route.deployedModelId,
        modelVersionId: route.modelVersionId,
        modelId: route.model.id,
        status: 'ok',
        label: pred.label,
        scores: pred.scores,
        summary: pred.summary,
        latencyMs,
        ...(shadow ? shadowOf(shadow, p) : {}),
      });
      return { label: pred.label, scores: pred.scores };
    });
    return { predictions, deployedModelId: route.deployedModelId, modelVersionId: route.modelVersionId };
  }

  private logFailure(
    route: Route | undefined,
    status: 'error' | 'invalid',
    started: number,
    error: string,
  ): void {
    this.options.log?.write({
      time: new Date().toISOString(),
      env: this.options.env,
      deployedModelId: route?.deployedModelId,
      modelVersionId: route?.modelVersionId,
      modelId: route?.model.id,
      status,
      latencyMs: round3(performance.now() - started),
      error,
    });
  }
}

/**
 * The shadow model's answer to one instance, for the log only; its latency is not the canary's
 * and its failure is not the client's (a shadow that throws is simply not logged).
 */
function shadowOf(shadow: Route, p: ParsedInstance): { shadow?: ShadowPrediction } {
  try {
    const pred =
      p.kind === 'audio' ? shadow.model.predictAudio(p.audio) : shadow.model.predictFeatures(p.raw);
    return {
      shadow: {
        deployedModelId: shadow.deployedModelId,
        modelVersionId: shadow.modelVersionId,
        label: pred.label,
        scores: pred.scores,
      },
    };
  } catch {
    return {};
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
