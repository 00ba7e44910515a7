/**
 * `lockstep push` and `lockstep pull` SIGKILLed at random points against the fake GCS server:
 * nothing on the remote or in the cache ever holds bytes that do not match its name, and the
 * next run finishes without sending finished objects again. (`npm run bench -- faults` runs 20
 * trials of each and reports the figures.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeGcs } from '../support/fake-gcs.ts';
import { pullKillTrials, pushKillTrials } from '../support/remote-kills.ts';

let fake: FakeGcs;
beforeAll(async () => {
  fake = await FakeGcs.start();
});
afterAll(async () => {
  await fake.close();
});

describe('push and pull killed with SIGKILL', () => {
  it(
    'push: the remote holds only intact objects and the next push resends none of them',
    { timeout: 240_000 },
    async () => {
      const f = await pushKillTrials(fake, 3, 60);
      expect(f.objectsChecked, `kill seed ${f.seed}`).toBeGreaterThan(0);
      expect(f).toMatchObject({ badObjects: 0, transferredTwice: 0, failedReruns: 0 });
    },
  );

  it(
    'pull: the cache holds only intact objects and the next pull fetches none of them again',
    { timeout: 240_000 },
    async () => {
      const f = await pullKillTrials(fake, 3, 60);
      expect(f.objectsChecked, `kill seed ${f.seed}`).toBeGreaterThan(0);
      expect(f).toMatchObject({ badObjects: 0, transferredTwice: 0, failedReruns: 0 });
    },
  );
});
