import { getEventListeners } from 'node:events';
import { describe, expect, it } from 'vitest';
import { sleep } from '../../lib/store/gcs-download.ts';

describe('the retry back-off sleep', () => {
  it('leaves no abort listener behind on the signal it was given, however many back-offs', async () => {
    const controller = new AbortController();
    for (let i = 0; i < 20; i++) await sleep(0, controller.signal);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  it('rejects with the abort reason, at once when the signal is already aborted', async () => {
    const controller = new AbortController();
    const waiting = sleep(60_000, controller.signal);
    controller.abort(new Error('interrupted'));
    await expect(waiting).rejects.toThrow('interrupted');
    await expect(sleep(60_000, controller.signal)).rejects.toThrow('interrupted');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});
