import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../lib/errors.ts';
import { vertexEndpointOverride, vertexPollMs } from '../../lib/compute/jobs-client.ts';

const saved = { poll: process.env.LOCKSTEP_VERTEX_POLL_MS, endpoint: process.env.LOCKSTEP_VERTEX_ENDPOINT };
afterEach(() => {
  for (const [name, value] of [
    ['LOCKSTEP_VERTEX_POLL_MS', saved.poll],
    ['LOCKSTEP_VERTEX_ENDPOINT', saved.endpoint],
  ] as const) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

describe('Vertex AI client settings from the environment', () => {
  it('LOCKSTEP_VERTEX_POLL_MS: unset is 10 s, a number is taken', () => {
    delete process.env.LOCKSTEP_VERTEX_POLL_MS;
    expect(vertexPollMs()).toBe(10_000);
    process.env.LOCKSTEP_VERTEX_POLL_MS = '250';
    expect(vertexPollMs()).toBe(250);
  });

  // Number('abc') is NaN and setTimeout(NaN) fires at once: a typo would poll Vertex AI in a busy loop.
  it.each(['abc', '', '0', '-5', '1e400'])(
    'LOCKSTEP_VERTEX_POLL_MS=%j is a one-line usage error',
    (value) => {
      process.env.LOCKSTEP_VERTEX_POLL_MS = value;
      expect(() => vertexPollMs()).toThrow(UsageError);
      expect(() => vertexPollMs()).toThrow(
        /^LOCKSTEP_VERTEX_POLL_MS: expected a positive number of milliseconds, got ".*"\. /,
      );
    },
  );

  it('LOCKSTEP_VERTEX_ENDPOINT: empty counts as unset', () => {
    process.env.LOCKSTEP_VERTEX_ENDPOINT = '';
    expect(vertexEndpointOverride()).toBeUndefined();
    process.env.LOCKSTEP_VERTEX_ENDPOINT = 'http://127.0.0.1:9';
    expect(vertexEndpointOverride()).toBe('http://127.0.0.1:9');
  });
});
