/**
 * The prediction server's young generation (lib/serving/young-generation.ts): workers get the
 * fixed semi-space unless the user chose one, and the image's CMD passes the same flag to the
 * lone server (V8 flags cannot come through NODE_OPTIONS). That `serve --workers` workers run
 * with it is checked on live workers in serve-stop.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  serverExecArgv,
  SERVER_V8_FLAGS,
  SINGLE_THREADED_GC_FLAG,
  YOUNG_GENERATION_FLAG,
} from '../../lib/serving/young-generation.ts';
import { parseDockerfile } from '../support/image.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');

describe('server young generation', () => {
  it('is added to the parent node arguments, which stay first and unchanged', () => {
    expect(serverExecArgv([])).toEqual([YOUNG_GENERATION_FLAG, SINGLE_THREADED_GC_FLAG]);
    expect(serverExecArgv(['--enable-source-maps'])).toEqual([
      '--enable-source-maps',
      YOUNG_GENERATION_FLAG,
      SINGLE_THREADED_GC_FLAG,
    ]);
  });

  it.each(['--max-semi-space-size=64', '--min-semi-space-size=4', '--max_semi_space_size=8'])(
    'leaves a semi-space size the user chose (%s) alone',
    (flag) => {
      expect(serverExecArgv(['--inspect', flag])).toEqual(['--inspect', flag, SINGLE_THREADED_GC_FLAG]);
    },
  );

  it.each([
    '--no-single-threaded-gc',
    '--single-threaded-gc',
    '--single-threaded',
    '--no_single_threaded_gc',
  ])('leaves the GC threading the user chose (%s) alone', (flag) => {
    expect(serverExecArgv([flag])).toEqual([flag, YOUNG_GENERATION_FLAG]);
  });

  it('single-threaded GC is a flag this node accepts on its command line', () => {
    const r = spawnSync(process.execPath, [SINGLE_THREADED_GC_FLAG, '-p', '1 + 1'], { encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('2');
  });

  it('is a flag this node accepts on its command line and sizes the young generation with', () => {
    const r = spawnSync(
      process.execPath,
      [
        YOUNG_GENERATION_FLAG,
        '-p',
        "require('v8').getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').space_size",
      ],
      { encoding: 'utf8' },
    );
    expect(r.stderr).toBe('');
    expect(Number(r.stdout)).toBeGreaterThanOrEqual(16 << 20);
  });

  it("is in the image's CMD, ahead of the script", () => {
    const cmds = parseDockerfile(fs.readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8')).filter(
      (i) => i.op === 'CMD',
    );
    const cmd = JSON.parse(cmds.at(-1)!.args) as string[];
    expect(cmd.slice(0, 4)).toEqual(['node', ...SERVER_V8_FLAGS, 'bin/lockstep.mjs']);
  });
});
