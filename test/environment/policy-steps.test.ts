import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../lib/errors.ts';
import { parsePolicy } from '../../lib/environment/policy.ts';

const FILE = 'promotion/staging.yaml';
const policy = (steps: string) => `branch: staging\ncanary:\n  steps: ${steps}\n`;

describe('policy canary steps', () => {
  it.each([
    ['[10, shadow, 100]', 'only the first canary step can be shadow'],
    ['[shadow, shadow, 100]', 'only the first canary step can be shadow'],
    ['[shadow, 50, 25, 100]', 'canary steps must increase'],
    ['[shadow]', 'the last canary step must be 100'],
  ])('policy canary steps %s are refused with one reason, one line', (steps, reason) => {
    let caught: unknown;
    try {
      parsePolicy(policy(steps), FILE);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).message).toBe(
      `${FILE}:3: canary.steps: ${reason}, got a list. Fix the value (see promotion/policy.schema.json).`,
    );
  });

  it('policy canary steps accept shadow first', () => {
    expect(parsePolicy(policy('[shadow, 10, 50, 100]'), FILE).canary.steps).toEqual(['shadow', 10, 50, 100]);
  });
});
