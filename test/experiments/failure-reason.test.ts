/**
 * The one-line reason an experiment (or a queue entry) is marked failed with, taken from what a
 * real `node` child printed: a crash names its error, not Node's closing `Node.js v20...` line;
 * a kill names the signal; no output names the exit code.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { failureReason } from '../../lib/experiments/run.ts';

function child(script: string): { code: number; signal?: NodeJS.Signals; stderr: string } {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  return { code: r.status ?? 1, ...(r.signal ? { signal: r.signal } : {}), stderr: r.stderr };
}

describe('failureReason', () => {
  it('a crash gives its error line, not the Node.js version line Node prints last', () => {
    const crash = child(
      "const e = new TypeError('cannot read features of undefined'); e.code = 'X_FEATURES'; throw e;",
    );
    expect(crash.stderr.trim().split('\n').at(-1)).toMatch(/^Node\.js v\d/);
    expect(failureReason(crash)).toBe('TypeError: cannot read features of undefined');
  });

  it('an error with a code in brackets (Node system errors) keeps it', () => {
    const crash = child("import fs from 'node:fs'; fs.readFileSync('/nonexistent/params.yaml');");
    expect(failureReason(crash)).toMatch(
      /^Error: ENOENT: no such file or directory, open '\/nonexistent\/params\.yaml'$/,
    );
  });

  it("a command's own one-line error is its last line", () => {
    const failed = child(
      "console.error('featurize: 1/3 files'); console.error('train failed: out of memory'); process.exit(1);",
    );
    expect(failureReason(failed)).toBe('train failed: out of memory');
  });

  it('a child killed by a signal says so first, with its last line', () => {
    const killed = child("console.error('featurize: 1/350 files'); process.kill(process.pid, 'SIGKILL');");
    expect(failureReason(killed)).toBe('killed by SIGKILL; its last line: featurize: 1/350 files');
    expect(failureReason({ code: 1, signal: 'SIGKILL', stderr: '' })).toBe('killed by SIGKILL, no output');
  });

  it('no output gives the exit code', () => {
    expect(failureReason(child('process.exit(3)'))).toBe('exit code 3, no output');
  });
});
