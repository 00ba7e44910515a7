/**
 * The shadow worker's messages and what they become in the prediction log: the request and
 * instance shapes sent to shadow-worker.mjs, its replies, and the shadow entries (`role:
 * 'shadow'`, the stable model's answer beside the candidate's) the canary analysis reads. Also
 * how much CPU the worker thread has used, which the prediction budget is measured in.
 */
import fs from 'node:fs';
import type { DecodedAudio } from '../audio/wav.ts';
import type { PredictionLog } from './logs.ts';
import type { Route } from './router.ts';

/** One instance as the answered request saw it. */
export type ShadowInstance = { kind: 'audio'; audio: DecodedAudio } | { kind: 'features'; raw: Float32Array };

/** A request the stable model answered, to mirror to the candidate. */
export interface MirrorRequest {
  env: string;
  log?: PredictionLog;
  candidate: Route;
  stable: Route;
  instances: ShadowInstance[];
  /** The stable model's answers, index for index. */
  answers: { label: string; scores: Record<string, number> }[];
  /** Decode and input checks of the request (shared by both models), added to the first instance's latency. */
  prepMs: number;
}

/** One instance of a mirrored request, queued for or in the worker. */
export interface Job {
  id: number;
  req: MirrorRequest;
  index: number;
  /** When the prediction began: wall clock, and the worker thread's CPU time if readable. */
  wall0?: number;
  cpu0?: number;
}

/** A message from shadow-worker.mjs. */
export interface Reply {
  id?: number;
  started?: boolean;
  /** With `started`: the worker's thread id and CPU time (ms), on Linux. */
  tid?: number;
  cpuMs?: number;
  label?: string;
  scores?: Record<string, number>;
  summary?: number[];
  error?: string;
  ms?: number;
}

function base(job: Job) {
  const c = job.req.candidate;
  return {
    time: new Date().toISOString(),
    env: job.req.env,
    deployedModelId: c.deployedModelId,
    modelVersionId: c.modelVersionId,
    modelId: c.model.id,
    role: 'shadow' as const,
  };
}

/** The request's shared preparation counts once, on its first instance (as for the answered one). */
function latency(job: Job, ms: number): number {
  return round3((job.index === 0 ? job.req.prepMs : 0) + ms);
}

export function logShadowOk(job: Job, reply: Reply): void {
  const { stable, answers } = job.req;
  job.req.log?.write({
    ...base(job),
    status: 'ok',
    label: reply.label,
    scores: reply.scores,
    summary: reply.summary,
    latencyMs: latency(job, reply.ms ?? 0),
    shadow: {
      deployedModelId: stable.deployedModelId,
      modelVersionId: stable.modelVersionId,
      label: answers[job.index].label,
      scores: answers[job.index].scores,
    },
  });
}

export function logShadowError(job: Job, what: string, ms: number): void {
  job.req.log?.write({
    ...base(job),
    status: 'error',
    latencyMs: latency(job, ms),
    error: `deployed model ${job.req.candidate.deployedModelId}: ${what}.`,
  });
}

/** CPU ticks per second in /proc stat files (USER_HZ, 100 on every Linux build in use). */
const TICKS_PER_S = 100;

/** CPU time (ms) thread `tid` of this process has used, or undefined where /proc cannot tell. */
export function threadCpuMs(tid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? (ticks * 1000) / TICKS_PER_S : undefined;
  } catch {
    return undefined;
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
