// Worker thread for shadow traffic (lib/serving/shadow.ts): loads the candidate model of a shadow
// step by its directory and predicts the instances the stable model answered, so a slow or hung
// candidate costs this thread, never the one answering requests. It runs at the lowest CPU
// priority (on Linux a thread's nice value is its own), so it only uses CPU the answered requests
// leave. From the sources the model code is TypeScript, so the worker registers tsx itself; in
// the compiled CLI (lib/cli/build.mjs) it is compiled in and LOCKSTEP_COMPILED is true.
// It talks over its own port (workerData.port), not parentPort: a module a loader imports may
// listen on parentPort itself (lib/store/hash-worker.mjs does). Protocol, one job at a time:
//   in  { id, key, dir, loader?: { module, export }, instance: { kind: 'audio', audio } | { kind: 'features', raw } }
//   out { id, started: true, tid?, cpuMs? } once the model is loaded and the prediction begins
//       (tid and cpuMs: this thread's id and CPU time on Linux, so the budget is CPU time),
//   out { id, label, scores, summary, ms } or { id, error, ms }.
import fs from 'node:fs';
import os from 'node:os';
import { workerData } from 'node:worker_threads';

/** @type {import('node:worker_threads').MessagePort} */
const port = workerData.port;

try {
  os.setPriority(19);
} catch {
  // Not allowed here (some containers): the thread still keeps the answering thread unblocked.
}
if (!globalThis.LOCKSTEP_COMPILED) (await import('tsx/esm/api')).register();

/** Loaded models by key (the model's version id); the last few only. */
const models = new Map();
const KEEP = 2;

async function modelFor(key, dir, loader) {
  let p = models.get(key);
  if (!p) {
    const load = loader
      ? (await import(loader.module))[loader.export]
      : (await import('./model.ts')).loadServingModel;
    if (typeof load !== 'function')
      throw new Error(`loader ${loader.module}#${loader.export} is not a function`);
    p = load(dir);
    models.set(key, p);
    p.catch(() => models.delete(key));
    while (models.size > KEEP) models.delete(models.keys().next().value);
  }
  return p;
}

/** This thread's id and CPU time (ms) from /proc (Linux), or {} where it cannot be read. */
function threadCpu() {
  try {
    const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    const tid = Number(stat.slice(0, stat.indexOf(' ')));
    return Number.isFinite(ticks) && Number.isInteger(tid) ? { tid, cpuMs: ticks * 10 } : {};
  } catch {
    return {};
  }
}

const message = (err) => String(err && err.message ? err.message : err).split('\n')[0];

port.on('message', async ({ id, key, dir, loader, instance }) => {
  let model;
  try {
    model = await modelFor(key, dir, loader);
  } catch (err) {
    port.postMessage({ id, error: `cannot load the model (${message(err)})`, ms: 0 });
    return;
  }
  port.postMessage({ id, started: true, ...threadCpu() });
  const t0 = performance.now();
  try {
    // The answer path checked the length against the stable model; the candidate may take another.
    if (instance.kind === 'features' && instance.raw.length !== model.featureDim)
      throw new Error(
        `wrong shape "${instance.raw.length}". The candidate expects ${model.featureDim} raw summary features`,
      );
    const p =
      instance.kind === 'audio' ? model.predictAudio(instance.audio) : model.predictFeatures(instance.raw);
    port.postMessage({
      id,
      label: p.label,
      scores: p.scores,
      summary: p.summary,
      ms: performance.now() - t0,
    });
  } catch (err) {
    port.postMessage({ id, error: message(err), ms: performance.now() - t0 });
  }
});
