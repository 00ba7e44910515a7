/**
 * Serving's side of the input checks (`lib/validation`): every audio instance is checked against
 * the input schema of the model that answers it, so a served model refuses what its training
 * refused. Error anomalies reject the request (400) unless the environment's policy says `flag`;
 * warnings are answered and reported with the prediction.
 */
import type { DecodedAudio } from '../audio/wav.ts';
import type { InputAnomaly } from './endpoint.ts';
import { describeRejection, type Anomaly } from '../validation/anomaly.ts';
import { inspectClip, shouldPredict, type OnErrorAnomaly } from '../validation/clip.ts';
import { defaultInputChecks, readInputChecks, type InputChecks } from '../validation/schema.ts';
import type { ModelLoader, ServingModel } from './model.ts';
import { LockstepError } from '../errors.ts';

/** Loads a model directory and attaches its input checks (`schema.json`, or the defaults). */
export async function loadWithInputChecks(loader: ModelLoader, dir: string): Promise<ServingModel> {
  const checks = readInputChecks(dir);
  const model = await loader(dir);
  return model.inputChecks ? model : { ...model, inputChecks: checks };
}

const FALLBACK = defaultInputChecks('the model carries no input schema');

/** The checks a model's inputs get. */
export function checksOf(model: ServingModel): InputChecks {
  return model.inputChecks ?? FALLBACK;
}

/** One error-level instance of a request, for the 400 body. */
export interface RejectedInstance {
  instance: number;
  anomalies: InputAnomaly[];
}

/** A request with an instance the answering model's input checks refuse: HTTP 400. */
export class InputAnomalyError extends LockstepError {
  readonly statusCode = 400;
  readonly deployedModelId: string;
  readonly rejected: RejectedInstance[];
  constructor(deployedModelId: string, rejected: RejectedInstance[], message: string) {
    super(message);
    this.deployedModelId = deployedModelId;
    this.rejected = rejected;
  }
}

/** An audio instance after the checks. */
export interface CheckedAudio {
  /** Decoded audio when it is to be predicted. */
  audio?: DecodedAudio;
  anomalies: InputAnomaly[];
  /** The reason line when refused (`instances[i].audio: silent: RMS ... . Send ...`). */
  rejection?: string;
}

const toInput = (a: Anomaly): InputAnomaly => ({ severity: a.severity, kind: a.kind, detail: a.detail });

/** Decodes and checks one audio instance's bytes against `checks`. */
export function checkAudioInstance(
  bytes: Uint8Array,
  where: string,
  checks: InputChecks,
  onError: OnErrorAnomaly,
  decode: (bytes: Uint8Array, name: string) => DecodedAudio,
): CheckedAudio {
  const clip = inspectClip(bytes, where, checks, decode);
  const anomalies = clip.anomalies.map(toInput);
  if (shouldPredict(clip, onError)) return { audio: clip.audio, anomalies };
  return { anomalies, rejection: describeRejection(where, clip.anomalies) };
}

/** Container variable carrying the policy's `serving.on_error_anomaly` (Vertex AI mode). */
export const ON_ERROR_ANOMALY_ENV = 'LOCKSTEP_ON_ERROR_ANOMALY';

/** Reads LOCKSTEP_ON_ERROR_ANOMALY (unset: `reject`). */
export function readOnErrorAnomaly(env: NodeJS.ProcessEnv = process.env): OnErrorAnomaly {
  const v = env[ON_ERROR_ANOMALY_ENV];
  if (v === undefined || v === '') return 'reject';
  if (v === 'reject' || v === 'flag') return v;
  throw new LockstepError(
    `${ON_ERROR_ANOMALY_ENV}: not "reject" or "flag" "${v}". Set it to reject (the default) or flag.`,
  );
}
