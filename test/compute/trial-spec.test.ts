/**
 * What a trial job writes to the remote and the tuning process reads back: a diverged model's
 * NaN values travel as null and come back as NaN (a local tune sees NaN too), and anything that
 * is not an epoch or an outcome is refused.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeNumbers,
  encodeNumbers,
  trialEpochSchema,
  trialOutcomeSchema,
} from '../../lib/compute/trial-spec.ts';

describe('trial epochs and outcomes on the remote', () => {
  it('round-trips NaN values and refuses malformed ones', () => {
    const epoch = trialEpochSchema.parse(decodeNumbers(encodeNumbers({ epoch: 3, value: NaN })));
    expect(epoch.epoch).toBe(3);
    expect(epoch.value).toBeNaN();
    const outcome = trialOutcomeSchema.parse(
      decodeNumbers(
        encodeNumbers({
          value: NaN,
          metrics: { val_loss: NaN, val_accuracy: 0.5 },
          pruned: false,
          epochs: 2,
          curve: [0.7, NaN],
        }),
      ),
    );
    expect(outcome.value).toBeNaN();
    expect(outcome.metrics.val_loss).toBeNaN();
    expect(outcome.curve[1]).toBeNaN();
    for (const bad of [
      '{"epoch":1,"value":"0.9"}',
      '{"epoch":0,"value":1}',
      '{"epoch":1.5,"value":1}',
      '{"epoch":1}',
    ])
      expect(trialEpochSchema.safeParse(decodeNumbers(bad)).success, bad).toBe(false);
  });
});
