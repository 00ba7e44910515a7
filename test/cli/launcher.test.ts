import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, '../..');
const DENY = path.join(ROOT, 'test/support/deny-imports.mjs');
/** Prints the built-in modules the process loaded, when it exits. */
const LIST_BUILTINS = `data:text/javascript,${encodeURIComponent(
  "process.on('exit', () => process.stderr.write(process.moduleLoadList.join('\\n')));",
)}`;
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
    // Nor node:child_process, which the inlined commander only needs for executable subcommands.
    const builtins = await node(['--import', LIST_BUILTINS, bin, '--help']);
    expect(builtins.code).toBe(0);
    expect(builtins.stderr).toContain('NativeModule fs');
    expect(builtins.stderr).not.toContain('NativeModule child_process');
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

    it('a damaged build (a truncated main.mjs, a deleted chunk, an empty or malformed inputs.json) is rebuilt, never run', async () => {
      fs.rmSync(path.join(pkg, 'dist'), { recursive: true, force: true });
      editDescription('before damage');
      expect((await help()).stdout).toContain('before damage');
      const damage = [
        (dir: string) => fs.writeFileSync(path.join(dir, 'main.mjs'), 'export const main = (\n'),
        (dir: string) => fs.rmSync(path.join(dir, 'main.mjs')),
        // A chunk main.mjs imports only when a command runs (here the status command's module).
        (dir: string) =>
          fs.rmSync(
            path.join(
              dir,
              fs.readdirSync(dir).find((n) => /^status-\w+\.mjs$/.test(n))!,
            ),
          ),
        (dir: string) => fs.writeFileSync(path.join(dir, 'inputs.json'), '{}\n'),
        (dir: string) =>
          fs.writeFileSync(path.join(dir, 'inputs.json'), '{"files":{"lib/cli/main.ts":null}}\n'),
      ];
      for (const hurt of damage) {
        const build = current();
        hurt(path.join(pkg, 'dist/cli', build));
        const res = await help();
        expect(res).toMatchObject({ code: 0, stderr: '' });
        expect(res.stdout).toContain('before damage');
        expect(current()).not.toBe(build);
      }
    });

    it('a rebuild never prunes a build that a live process runs from', async () => {
      const res = await node([path.join(pkg, 'bin/lockstep.mjs'), '--help'], { cwd: pkg });
      expect(res.code).toBe(0);
      const used = current();
      // The launcher claimed the build it ran, and dropped the claim when it exited.
      expect(fs.readdirSync(path.join(pkg, 'dist/cli', used, 'users'))).toEqual([]);
      // A process still running from it (as `lockstep serve` or a second `lockstep` would be).
      const live = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      try {
        fs.writeFileSync(path.join(pkg, 'dist/cli', used, 'users', String(live.pid)), '');
        const { buildCli } = (await import(path.join(ROOT, 'lib/cli/build.mjs'))) as {
          buildCli(o: { root: string; quiet: boolean }): Promise<string>;
        };
        for (let i = 0; i < 5; i++) await buildCli({ root: pkg, quiet: true });
        expect(fs.existsSync(path.join(pkg, 'dist/cli', used, 'main.mjs'))).toBe(true);
      } finally {
        live.kill();
        await new Promise((resolve) => live.once('exit', resolve));
      }
      // Once nobody runs it, the next rebuild prunes it.
      const { buildCli } = (await import(path.join(ROOT, 'lib/cli/build.mjs'))) as {
        buildCli(o: { root: string; quiet: boolean }): Promise<string>;
      };
      await buildCli({ root: pkg, quiet: true });
      expect(fs.existsSync(path.join(pkg, 'dist/cli', used))).toBe(false);
    });

    it('an edit to lib/cli/build.mjs makes the build stale, as a source edit does', async () => {
      expect((await help()).code).toBe(0);
      const build = current();
      fs.appendFileSync(path.join(pkg, 'lib/cli/build.mjs'), '// compiled differently now\n');
      expect((await help()).code).toBe(0);
      expect(current()).not.toBe(build);
    });

    it('an edit that keeps the size and puts the mtime back (touch -r, cp -p) makes the build stale', async () => {
      const main = path.join(pkg, 'lib/cli/main.ts');
      // A whole-second mtime, so utimes can put back exactly what the build recorded.
      const mtime = 1_700_000_000;
      fs.utimesSync(main, mtime, mtime);
      expect((await help()).code).toBe(0);
      const build = current();
      const size = fs.statSync(main).size;
      const source = fs.readFileSync(main, 'utf8');
      // The description as the earlier tests left it, with its first letter changed.
      const was = /\.description\(\s*'([^']*)'/.exec(source)![1]!;
      const now = (was.startsWith('X') ? 'Y' : 'X') + was.slice(1);
      fs.writeFileSync(main, source.replace(`'${was}'`, `'${now}'`));
      fs.utimesSync(main, mtime, mtime);
      expect(fs.statSync(main)).toMatchObject({ size, mtimeMs: mtime * 1000 });
      const res = await help();
      expect(res.stdout).toContain(now.slice(0, 12));
      expect(current()).not.toBe(build);
    });

    it('a source file deleted since the build makes the build stale', async () => {
      expect((await help()).code).toBe(0);
      const build = current();
      const inputs = JSON.parse(
        fs.readFileSync(path.join(pkg, 'dist/cli', build, 'inputs.json'), 'utf8'),
      ) as {
        files: Record<string, unknown>;
      };
      // Only `lockstep batch-predict` imports it, lazily: --help itself still runs from source.
      expect(inputs.files).toHaveProperty(['lib/registry/pinned.ts']);
      fs.rmSync(path.join(pkg, 'lib/registry/pinned.ts'));
      const res = await node([path.join(pkg, 'bin/lockstep.mjs'), '--help'], {
        cwd: pkg,
        env: { LOCKSTEP_DEBUG: '1' },
      });
      expect(res.code).toBe(0);
      // Not reused: the launcher tried to recompile (esbuild cannot resolve the missing file).
      expect(res.stderr).toContain('rebuild failed');
      expect(current()).toBe(build);
    });
  });

  it('run from a directory that was deleted under the shell, it fails in one line', async () => {
    const gone = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-gone-'));
    // The shell enters the directory, which is then removed: the CLI starts with no cwd.
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(
        '/bin/sh',
        [
          '-c',
          'cd "$1" && rmdir "$1" && exec "$2" "$3" status',
          'sh',
          gone,
          process.execPath,
          path.join(ROOT, 'bin/lockstep.mjs'),
        ],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      child.on('close', (c) => resolve({ code: c, stderr: err }));
    });
    expect(fs.existsSync(gone)).toBe(false);
    expect(code).toBe(1);
    expect(stderr).toBe(
      'lockstep: the current directory no longer exists (it was deleted or moved). cd into the repository again, then run the command.\n',
    );
  });

  it('without tsx and without a usable build (npm ci --omit=dev, then an edit) it fails in one line', async () => {
    const pkg = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-launcher-prod-'));
    try {
      for (const dir of ['bin', 'lib', 'stages'])
        fs.cpSync(path.join(ROOT, dir), path.join(pkg, dir), { recursive: true });
      fs.copyFileSync(path.join(ROOT, 'package.json'), path.join(pkg, 'package.json'));
      // Production dependencies only: every package but the TypeScript tooling.
      const modules = path.join(pkg, 'node_modules');
      fs.mkdirSync(modules);
      for (const name of fs.readdirSync(path.join(ROOT, 'node_modules'))) {
        if (['tsx', 'esbuild', '@esbuild', '.bin'].includes(name)) continue;
        fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
      }
      const res = await node([path.join(pkg, 'bin/lockstep.mjs'), '--help'], { cwd: pkg });
      expect(res.code).toBe(1);
      expect(res.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(/^lockstep: no usable compiled CLI in dist\/cli and tsx is not installed/),
      ]);
    } finally {
      fs.rmSync(pkg, { recursive: true, force: true });
    }
  });
});
