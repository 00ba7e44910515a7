/**
 * failureReason on stderr a real child can print: values thrown that are not Errors, errors
 * whose name does not end in "Error", an earlier stage's log line that merely starts with
 * "Error:", and lines too long for a one-line reason.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { failureReason } from '../../lib/experiments/run.ts';

function child(script: string): { code: number; signal?: NodeJS.Signals; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { code: r.status ?? 1, ...(r.signal ? { signal: r.signal } : {}), stderr: r.stderr };
}

describe('failureReason on odd crashes', () => {
  it("a thrown string gives the string, not Node's --trace-uncaught hint", () => {
    expect(failureReason(child("throw 'features.parquet is empty'"))).toBe('features.parquet is empty');
  });

  it('a string thrown from a timer gives the string', () => {
    expect(failureReason(child("setTimeout(() => { throw 'shard 3 lost'; })"))).toBe('shard 3 lost');
  });

  it("a thrown object gives the object, not Node's internal source line", () => {
    expect(failureReason(child("throw { code: 7, why: 'bad' }"))).toBe("{ code: 7, why: 'bad' }");
  });

  it('a thrown object printed over several lines gives it on one line', () => {
    const r = failureReason(
      child(
        "throw { code: 7, why: 'a long reason that makes Node print the object over several lines', n: [1, 2, 3] }",
      ),
    );
    expect(r).toMatch(/^\{ code: 7, why: 'a long reason .*' *, *n: \[ 1, 2, 3 \] \}$/);
  });

  it('an error whose name does not end in Error, with properties, gives its line, not a property', () => {
    const crash = child(
      "class Abort extends Error { name = 'Abort'; code = 'E_STOP' }; throw new Abort('stopped early');",
    );
    expect(failureReason(crash)).toBe('Abort: stopped early');
  });

  it('an AggregateError gives its own line', () => {
    const crash = child(
      "throw new AggregateError([new Error('one'), new Error('two')], 'all shards failed')",
    );
    expect(failureReason(crash)).toBe('AggregateError: all shards failed');
  });

  it('an unhandled rejection with a string names the string', () => {
    expect(failureReason(child("Promise.reject('quota exceeded')"))).toMatch(/quota exceeded/);
  });
});

describe('failureReason on a command that failed (no crash)', () => {
  it("an earlier log line starting with 'Error:' does not stand in for the command's own error", () => {
    const failed = child(
      [
        "console.error('Error: shard 2 timed out, retrying (1/3)');",
        "console.error('featurize: 350/350 files');",
        "console.error('lockstep: stage evaluate: auc 0.41 is below the gate 0.5. Fix the model, then run again.');",
        'process.exit(1);',
      ].join(' '),
    );
    expect(failureReason(failed)).toBe(
      'lockstep: stage evaluate: auc 0.41 is below the gate 0.5. Fix the model, then run again.',
    );
  });

  it('a child killed mid-stage gives its last line, not an earlier lockstep: warning', () => {
    const killed = child(
      "console.error('lockstep: warning: params.yaml has an unused key'); console.error('featurize: 2/350 files'); process.kill(process.pid, 'SIGKILL');",
    );
    expect(failureReason(killed)).toBe('killed by SIGKILL; its last line: featurize: 2/350 files');
  });

  it('CRLF and ANSI colours do not reach the reason', () => {
    expect(
      failureReason({
        code: 1,
        stderr: 'train: 1/3\r\n\u001b[31mlockstep: train failed: out of memory\u001b[39m\r\n',
      }),
    ).toBe('lockstep: train failed: out of memory');
  });

  it('a very long last line is cut to a readable reason', () => {
    const r = failureReason({ code: 1, stderr: `lockstep: bad value ${'x'.repeat(1_000_000)}\n` });
    expect(r.length).toBeLessThanOrEqual(500);
    expect(r.startsWith('lockstep: bad value xxx')).toBe(true);
  });
});
