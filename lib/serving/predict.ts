/**
 * The prediction core shared by the HTTP server and `lockstep predict`: validates a Vertex AI
 * style request body (`{"instances": [{"audio": <base64 WAV>} | {"features": [...]}]}`), routes
 * it to one deployed model (as Vertex does, a request is answered by a single deployed model),
 * checks every audio instance against that model's input schema (`./checks.ts`), predicts each
 * instance, logs one line per instance and returns the Vertex response shape.
 */
import type { DecodedAudio } from '../audio/wav.ts';
import { ClipTooLongError, decodeRequestWav } from './decode.ts';
import { Base64Audio, HEAD } from './json-body.ts';
import { LockstepError } from '../errors.ts';
import type { InputAnomaly, PredictResponse } from './endpoint.ts';
import type { OnErrorAnomaly } from '../validation/clip.ts';
import { checkAudioInstance, checksOf, InputAnomalyError, type RejectedInstance } from './checks.ts';
import type { PredictionLog, ShadowPrediction } from './logs.ts';
import type { ModelSource, Route } from './router.ts';
import { ShadowTraffic } from './shadow.ts';

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

/** A parsed instance; `where` names a raw body (`body`) in errors instead of `instances[i].audio`. */
type ParsedInstance =
  { kind: 'audio'; bytes: Uint8Array; where?: string } | { kind: 'features'; raw: Float32Array };

/** An instance ready for the model. */
type ReadyInstance =
  { kind: 'audio'; audio: DecodedAudio; anomalies: InputAnomaly[] } | { kind: 'features'; raw: Float32Array };

const BASE64 = /^[A-Za-z0-9+/\r\n]*={0,2}\s*$/;

/**
 * Validates the request body's shape (audio is decoded and checked later, against the model
 * that answers); every problem is a BadRequestError naming the instance. An `audio` is a base64
 * string, or the Base64Audio the server's JSON parser made of one (./json-body.ts).
 */
export function parseInstances(body: unknown, limits: PredictLimits = {}): ParsedInstance[] {
  const maxInstances = limits.maxInstances ?? 32;
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
    // A body the server read from its bytes holds each string's head and its decoded bytes.
    const head = a instanceof Base64Audio ? a.head : a;
    // An empty string is an empty file: the input checks report it as validate does.
    if (typeof head !== 'string') {
      throw new BadRequestError(`${where}.audio: not a string. Send a base64-encoded WAV file.`);
    }
    // Cheap check on the head only: Buffer.from ignores invalid characters silently.
    if (!BASE64.test(head.slice(0, HEAD))) {
      throw new BadRequestError(`${where}.audio: not base64. Send a base64-encoded WAV file.`);
    }
    return { kind: 'audio', bytes: a instanceof Base64Audio ? a.bytes : Buffer.from(head, 'base64') };
  });
}

/**
 * A raw WAV request body (`Content-Type: audio/wav`) as one audio instance, checked as an
 * `audio` instance of the JSON shape is (the input checks decode it and report what validate
 * reports).
 */
export function parseWavBody(bytes: Uint8Array): ParsedInstance[] {
  return [{ kind: 'audio', bytes, where: 'body' }];
}

export interface PredictorOptions {
  env: string;
  log?: PredictionLog;
  limits?: PredictLimits;
  /**
   * Audio instances with an error anomaly: `reject` (default) answers 400; `flag` predicts them
   * anyway and reports the anomalies with the prediction (promotion/<env>.yaml
   * `serving.on_error_anomaly`). Unreadable or empty clips are refused either way.
   */
  onErrorAnomaly?: OnErrorAnomaly;
  /**
   * Where a shadow step's mirrored instances go: a worker thread off the answer path (default: a
   * `ShadowTraffic` of this predictor's own, started on the first mirrored request).
   */
  shadow?: ShadowTraffic;
}

/** Runs requests against a model source. */
export class Predictor {
  readonly source: ModelSource;
  private readonly options: PredictorOptions;
  /** The shadow step's candidate predicts here, never on the answer path. */
  readonly shadow: ShadowTraffic;

  constructor(source: ModelSource, options: PredictorOptions) {
    this.source = source;
    this.options = options;
    this.shadow = options.shadow ?? new ShadowTraffic();
  }

  /**
   * Predicts a request body: the parsed Vertex JSON shape, or the bytes of a raw WAV body.
   * @throws BadRequestError (400), InputAnomalyError (400), UnavailableError (503), ModelFailureError (500).
   */
  predict(body: unknown): PredictResponse {
    const started = performance.now();
    let parsed: ParsedInstance[];
    try {
      parsed = body instanceof Uint8Array ? parseWavBody(body) : parseInstances(body, this.options.limits);
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
    const ready = this.checkInstances(parsed, route, started);
    const prepMs = performance.now() - started;
    const shadow = this.source.shadowFor?.(route);
    const predictions = ready.map((p, i) => {
      const t0 = i === 0 ? started : performance.now();
      let pred;
      try {
        pred = p.kind === 'audio' ? route.model.predictAudio(p.audio) : route.model.predictFeatures(p.raw);
      } catch (err) {
        const msg = `deployed model ${route.deployedModelId}: prediction failed (${(err as Error).message?.split('\n')[0]}).`;
        this.logFailure(route, 'error', t0, msg);
        throw new ModelFailureError(route.deployedModelId, `${msg} Check the model's logs.`, err);
      }
      const anomalies = p.kind === 'audio' && p.anomalies.length > 0 ? p.anomalies : undefined;
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
        ...(anomalies ? { anomalies } : {}),
        ...(shadow ? shadowOf(shadow, p) : {}),
      });
      return { label: pred.label, scores: pred.scores, ...(anomalies ? { anomalies } : {}) };
    });
    const mirror = this.source.mirrorFor?.(route);
    if (mirror) {
      // A shadow step: the candidate predicts the same instances on the shadow worker, and each
      // prediction is logged as a shadow one with the stable model's answer beside it.
      this.shadow.mirror({
        env: this.options.env,
        log: this.options.log,
        candidate: mirror,
        stable: route,
        instances: ready,
        answers: predictions,
        prepMs,
      });
    }
    return { predictions, deployedModelId: route.deployedModelId, modelVersionId: route.modelVersionId };
  }

  /**
   * Checks every instance against the routed model: feature shapes, then each audio clip against
   * the model's input schema. Any refused instance refuses the request (one line per refused
   * instance is logged as `rejected`, so monitoring and the canary see them).
   */
  private checkInstances(parsed: ParsedInstance[], route: Route, started: number): ReadyInstance[] {
    const dim = route.model.featureDim;
    for (const [i, p] of parsed.entries()) {
      if (p.kind === 'features' && p.raw.length !== dim) {
        const msg = `instances[${i}].features: wrong shape "${p.raw.length}". Model ${route.deployedModelId} expects ${dim} raw summary features.`;
        this.logFailure(route, 'invalid', started, msg);
        throw new BadRequestError(msg);
      }
    }
    const checks = checksOf(route.model);
    const onError = this.options.onErrorAnomaly ?? 'reject';
    const maxSeconds = this.options.limits?.maxAudioSeconds ?? 30;
    const rejected: (RejectedInstance & { reason: string })[] = [];
    // Instances in order; only returned when none was refused, so indexes line up.
    const ready: ReadyInstance[] = [];
    for (const [i, p] of parsed.entries()) {
      if (p.kind === 'features') {
        ready.push(p);
        continue;
      }
      const where = p.where ?? `instances[${i}].audio`;
      let c;
      try {
        c = checkAudioInstance(p.bytes, where, checks, onError, (b, n) => decodeRequestWav(b, n, maxSeconds));
      } catch (err) {
        if (!(err instanceof ClipTooLongError)) throw err;
        this.logFailure(route, 'invalid', started, err.message);
        throw new BadRequestError(err.message);
      }
      if (!c.audio) {
        rejected.push({ instance: i, anomalies: c.anomalies, reason: c.rejection! });
        continue;
      }
      ready.push({ kind: 'audio', audio: c.audio, anomalies: c.anomalies });
    }
    if (rejected.length === 0) return ready;
    for (const r of rejected) this.logFailure(route, 'rejected', started, r.reason, r.anomalies);
    const more =
      rejected.length > 1 ? ` (+${rejected.length - 1} more instance${rejected.length > 2 ? 's' : ''})` : '';
    throw new InputAnomalyError(
      route.deployedModelId,
      rejected.map(({ instance, anomalies }) => ({ instance, anomalies })),
      rejected[0].reason + more,
    );
  }

  private logFailure(
    route: Route | undefined,
    status: 'error' | 'invalid' | 'rejected',
    started: number,
    error: string,
    anomalies?: InputAnomaly[],
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
      ...(anomalies ? { anomalies } : {}),
    });
  }
}

/**
 * The shadow model's answer to one instance, for the log only; its latency is not the canary's
 * and its failure is not the client's (a shadow that throws is simply not logged).
 */
function shadowOf(shadow: Route, p: ReadyInstance): { shadow?: ShadowPrediction } {
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
