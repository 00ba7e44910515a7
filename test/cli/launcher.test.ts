import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DENY = path.join(ROOT, 'test/support/deny-imports.mjs');
const ML = '^(@tensorflow/|meyda|vega|@google-cloud/|fastify|espeak-ng|@resvg/)';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function node(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: options.cwd ?? ROOT,
      env: { ...process.env, NO_COLOR: '1', ...options.env },
      timeout: 120_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('lockstep launcher (bin/lockstep.mjs)', () => {
  it('lockstep --help and status load no ML library and no TypeScript loader', async () => {
    const bin = path.join(ROOT, 'bin/lockstep.mjs');
    // Brings the compiled CLI up to date if this checkout changed since `npm ci`.
    expect((await node([bin, '--help'])).code).toBe(0);
    const env = { DENY_IMPORTS: `${ML}|^tsx`, LOCKSTEP_REMOTE: '' };
    const help = await node(['--import', DENY, bin, '--help'], { env });
    expect(help).toMatchObject({ code: 0 });
    expect(help.stdout).toContain('status');
    const status = await node(['--import', DENY, bin, 'status', '--json'], { env });
    expect(status.stderr).toBe('');
    expect(status.code).toBe(0);
    const stages = (JSON.parse(status.stdout) as { stages: { name: string }[] }).stages.map((s) => s.name);
    expect(stages).toEqual(expect.arrayContaining(['ingest', 'featurize', 'train', 'evaluate', 'gate']));
    // The same hook does stop a command that needs the libraries, so the check above can fail.
    const denied = await node(
      ['--import', DENY, '-e', "await import('@tensorflow/tfjs')", '--input-type=module'],
      {
        env,
      },
    );
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('deny-imports');
  });

  describe('in a copy of the package', () => {
    let pkg: string;
    beforeAll(() => {
      pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-launcher-'));
      for (const dir of ['bin', 'lib', 'stages'])
        fs.cpSync(path.join(ROOT, dir), path.join(pkg, dir), { recursive: true });
      for (const file of ['package.json', 'tsconfig.json'])
        fs.copyFileSync(path.join(ROOT, file), path.join(pkg, file));
      fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'), 'dir');
    });
    afterAll(() => fs.rmSync(pkg, { recursive: true, force: true }));

    const help = () => node([path.join(pkg, 'bin/lockstep.mjs'), '--help'], { cwd: pkg });
    const current = () => fs.readFileSync(path.join(pkg, 'dist/cli/current'), 'utf8').trim();
    const editDescription = (text: string) => {
      const main = path.join(pkg, 'lib/cli/main.ts');
      const source = fs.readFileSync(main, 'utf8');
      const edited = source.replace(/\.description\(\s*'[^']*'/, `.description('${text}'`);
      expect(edited).not.toBe(source);
      fs.writeFileSync(main, edited);
    };

    it('lockstep compiles on first run, reuses a fresh build, and never runs code older than its sources', async () => {
      const first = await help();
      expect(first.code).toBe(0);
      const build = current();
      expect(fs.existsSync(path.join(pkg, 'dist/cli', build, 'main.mjs'))).toBe(true);
      expect((await help()).code).toBe(0);
      expect(current()).toBe(build);

      // An edited source: the next start recompiles and shows the edit.
      editDescription('edited once');
      const second = await help();
      expect(second.stdout).toContain('edited once');
      expect(current()).not.toBe(build);

      // Cannot recompile (dist is a file): the sources run through tsx, still showing the edit.
      fs.rmSync(path.join(pkg, 'dist'), { recursive: true });
      fs.writeFileSync(path.join(pkg, 'dist'), 'not a directory\n');
      editDescription('edited twice');
      const third = await help();
      expect(third).toMatchObject({ code: 0 });
      expect(third.stdout).toContain('edited twice');
    });
  });
});
