/**
 * The canary status is worded in one place (describeCanaryStatus): the CLI's one-line form, and
 * the dashboard's, which places the step among the policy's steps and says when it started.
 */
import { describe, expect, it } from 'vitest';
import {
  completedStatus,
  describeCanaryStatus,
  progressingStatus,
  rolledBackStatus,
} from '../../lib/canary/status.ts';

const now = new Date('2026-12-01T10:00:00.000Z');
const hash = 'ab'.repeat(32);

describe('canary status', () => {
  it.each([
    [
      'a progressing step, alone',
      progressingStatus(hash, { now, stepIndex: 1, message: 'healthy' }),
      undefined,
      'progressing, step 2, candidate abababababab: healthy',
    ],
    [
      'a shadow step among the policy steps',
      progressingStatus(hash, { now, stepIndex: 0, shadow: true, message: 'mirroring' }),
      ['shadow', 10, 100] as const,
      'progressing, step 1 of 3 (shadow → 10 → 100%), candidate abababababab (shadow) since 2026-12-01T10:00:00.000Z: mirroring',
    ],
    [
      'a rollback among the default steps',
      rolledBackStatus(hash, { now, stepIndex: 2, message: 'error rate up' }),
      [10, 25, 50, 100] as const,
      'rolled-back, step 3 of 4 (10 → 25 → 50 → 100%), candidate abababababab since 2026-12-01T10:00:00.000Z: error rate up',
    ],
    [
      'a step past the steps of a policy edited since',
      progressingStatus(hash, { now, stepIndex: 3, message: 'healthy' }),
      [50, 100] as const,
      'progressing, step 4 (the policy now has 2: 50 → 100%), candidate abababababab since 2026-12-01T10:00:00.000Z: healthy',
    ],
    [
      'a manual switch, completed at step index 0, without a message',
      completedStatus(hash, { now, stepIndex: 0 }),
      [10, 25, 50, 100] as const,
      'completed, serving 100%, candidate abababababab since 2026-12-01T10:00:00.000Z',
    ],
  ])('canary status describes %s in one line', (_name, status, steps, line) => {
    expect(describeCanaryStatus(status, steps)).toBe(line);
  });
});
