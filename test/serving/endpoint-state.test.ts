import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, ConfigProblems } from '../../lib/errors.ts';
import { readEndpointState } from '../../lib/serving/endpoint-state.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-endpoint-state-'));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
const FIX =
  'Fix the value, or delete the file to reset the local endpoint (it redeploys on the next reconcile).';

describe('local endpoint state', () => {
  it('a hand-edited state file reports every problem with its line', () => {
    const file = path.join(tmp, 'staging.json');
    fs.writeFileSync(
      file,
      JSON.stringify(
        {
          version: 1,
          env: 'staging',
          nextId: 0,
          deployedModels: [],
          trafficSplit: { a: 101 },
          updatedAt: 'x',
          bogus: 1,
        },
        null,
        2,
      ),
    );
    let err: unknown;
    try {
      readEndpointState(file, 'staging');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigProblems);
    expect((err as ConfigProblems).lines).toEqual([
      `${file}:4: nextId: must be >= 1, got 0. ${FIX}`,
      `${file}:7: trafficSplit.a: must be <= 100, got 101. ${FIX}`,
      `${file}:10: bogus: unknown key "bogus". Remove it or check the spelling, or delete the file to reset the local endpoint (it redeploys on the next reconcile).`,
    ]);
  });

  it('a state file that is not JSON is one line', () => {
    const file = path.join(tmp, 'prod.json');
    fs.writeFileSync(file, '{"version": 1,');
    expect(() => readEndpointState(file, 'prod')).toThrow(ConfigError);
    expect(() => readEndpointState(file, 'prod')).toThrow(
      /^[^\n]*prod\.json: not JSON\. Delete the file to reset the local endpoint \(it redeploys on the next reconcile\)\.$/,
    );
  });
});
