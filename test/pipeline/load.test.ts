import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = fileURLToPath(new URL('../../bin/lockstep.mjs', import.meta.url));

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-load-'));
  dirs.push(d);
  return d;
}

const STAGE = `import fs from 'node:fs';
export async function runHello(ctx: any): Promise<void> {
  fs.mkdirSync(ctx.abs('out/hello'), { recursive: true });
  fs.writeFileSync(ctx.abs('out/hello/out.txt'), fs.readFileSync(ctx.abs('data/in.txt')));
}
`;
const pipelineModule = (stageImport: string) => `import { runHello } from '${stageImport}';
export function pipeline(_params: unknown) {
  return [{ name: 'hello', description: 'copy', code: ['stages/hello'], deps: ['data/in.txt'], params: [], outs: ['out/hello'], run: runHello }];
}
`;

/** A repository with its own stages/pipeline.ts (importing a sibling .ts) and no package.json. */
function repoWithOwnPipeline(): string {
  const root = tmp();
  fs.mkdirSync(path.join(root, 'stages/hello'), { recursive: true });
  fs.mkdirSync(path.join(root, 'data'));
  fs.mkdirSync(path.join(root, '.git'));
  fs.writeFileSync(path.join(root, 'params.yaml'), 'train:\n  epochs: 3\n');
  fs.writeFileSync(path.join(root, 'data/in.txt'), 'abc\n');
  fs.writeFileSync(path.join(root, 'stages/hello/run.ts'), STAGE);
  fs.writeFileSync(path.join(root, 'stages/pipeline.ts'), pipelineModule('./hello/run.ts'));
  return root;
}

async function lockstep(cwd: string, ...args: string[]) {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, ...args], {
      cwd,
      env: { ...process.env, LOCKSTEP_FROM_SOURCE: '1' },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('loadPipeline', () => {
  it('loads a TypeScript pipeline module that no package.json declares as ESM (status, repro, --pipeline elsewhere)', async () => {
    const root = repoWithOwnPipeline();
    // Node takes the module for CommonJS, require()s it back mid-import and fails "in a cycle".
    expect(fs.existsSync(path.join(root, 'package.json'))).toBe(false);
    const status = await lockstep(root, 'status');
    expect(status.stderr).toBe('');
    expect(status.stdout).toMatch(/hello: never run/);
    const repro = await lockstep(root, 'repro');
    expect(repro.stderr).not.toMatch(/lockstep:/);
    expect(repro.code).toBe(0);
    expect(fs.readFileSync(path.join(root, 'out/hello/out.txt'), 'utf8')).toBe('abc\n');

    // A module named with --pipeline, from a subdirectory, in a directory of its own.
    const elsewhere = tmp();
    const stage = path.join(root, 'stages/hello/run.ts');
    fs.writeFileSync(path.join(elsewhere, 'p.ts'), pipelineModule(stage));
    fs.mkdirSync(path.join(root, 'sub'));
    const named = await lockstep(
      path.join(root, 'sub'),
      'status',
      '--pipeline',
      path.relative(path.join(root, 'sub'), path.join(elsewhere, 'p.ts')),
    );
    expect(named.stderr).toBe('');
    expect(named.stdout).toMatch(/pipeline: up to date/);
  }, 120_000);
});
