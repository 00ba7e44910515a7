// Worker thread for tuning: runs one trial at a time with `runTrial`. The trial code is
// TypeScript, so from the sources the worker registers tsx itself (the compiled CLI,
// lib/cli/build.mjs, compiles it in and sets LOCKSTEP_COMPILED). Protocol:
//   in  { type: 'trial', id, input }        → out { type: 'epoch', id, epoch, value } per epoch,
//   in  { type: 'decision', id, epoch, stop } (answer to each epoch message),
//   out { type: 'done', id, outcome } or { type: 'error', id, message }.
import { parentPort } from 'node:worker_threads';

if (!globalThis.LOCKSTEP_COMPILED) (await import('tsx/esm/api')).register();
const { runTrial } = await import('./trial.ts');

const waiting = new Map();

parentPort.on('message', async (msg) => {
  if (msg.type === 'decision') {
    const key = `${msg.id}:${msg.epoch}`;
    waiting.get(key)?.(msg.stop);
    waiting.delete(key);
    return;
  }
  if (msg.type !== 'trial') return;
  const { id, input } = msg;
  try {
    const outcome = await runTrial({
      ...input,
      onEpoch: (epoch, value) =>
        new Promise((resolve) => {
          waiting.set(`${id}:${epoch}`, resolve);
          parentPort.postMessage({ type: 'epoch', id, epoch, value });
        }),
    });
    parentPort.postMessage({ type: 'done', id, outcome });
  } catch (err) {
    parentPort.postMessage({ type: 'error', id, message: err instanceof Error ? err.message : String(err) });
  }
});
parentPort.postMessage({ type: 'ready' });
