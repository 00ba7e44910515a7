import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { FakeGcs } from '../support/fake-gcs.ts';
import { BUCKET, randomBlob, tempDir } from './gcs-helpers.ts';

const run = promisify(execFile);
const CLI = path.resolve(import.meta.dirname, '../../bin/lockstep.mjs');

let fake: FakeGcs;
let root: string;

beforeAll(async () => {
  fake = await FakeGcs.start();
  root = tempDir();
});
afterAll(async () => {
  await fake.close();
  fs.rmSync(root, { recursive: true, force: true });
});

/** Runs the CLI asynchronously (the fake server lives in this process and must keep serving). */
async function lockstep(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return lockstepEnv({ STORAGE_EMULATOR_HOST: fake.url }, ...args);
}

async function lockstepEnv(
  extra: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: '1', ...extra };
  delete env.LOCKSTEP_REMOTE;
  if (!extra.STORAGE_EMULATOR_HOST) delete env.STORAGE_EMULATOR_HOST;
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], {
      cwd: root,
      env,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('lockstep push/pull with a gs:// remote', () => {
  it('lockstep push, a no-op push and pull use the gs:// remote named in .lockstep/config.yaml', async () => {
    await run('git', ['init', '-q'], { cwd: root });
    fs.writeFileSync(path.join(root, 'a.bin'), randomBlob(20_000));
    fs.mkdirSync(path.join(root, 'd'));
    // Fixed bytes: these three always form one pack (random ones are cut into two now and then).
    for (let i = 0; i < 3; i++) fs.writeFileSync(path.join(root, 'd', `${i}.bin`), Buffer.alloc(3000, i + 1));
    expect((await lockstep('add', 'a.bin', 'd')).code).toBe(0);
    // The remote comes from the repository's committed configuration.
    fs.writeFileSync(
      path.join(root, '.lockstep', 'config.yaml'),
      `remote: shared\nremotes:\n  shared:\n    url: gs://${BUCKET}/cli/\n`,
    );

    const first = await lockstep('push');
    expect(first).toMatchObject({ code: 0 });
    expect(first.stdout + first.stderr).toMatch(
      /pushed 5 objects .* to gs:\/\/test-bucket\/cli; 0 already there/,
    );
    // a.bin, d's manifest, and one pack holding d's three files.
    expect(fake.names(BUCKET)).toHaveLength(3);
    expect(fake.names(BUCKET).filter((n) => n.startsWith('cli/packs/'))).toHaveLength(1);

    fake.resetLog();
    const again = await lockstep('push');
    expect(again.stdout + again.stderr).toMatch(/pushed 0 objects .*; 5 already there/);
    expect(fake.count('upload')).toBe(0);

    fs.rmSync(path.join(root, '.lockstep', 'cache'), { recursive: true, force: true });
    const pulled = await lockstep('pull');
    expect(pulled).toMatchObject({ code: 0 });
    expect(pulled.stdout + pulled.stderr).toMatch(/pulled 5 objects/);
    expect(fake.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('the endpoint setting of a remote points the CLI at an emulator without STORAGE_EMULATOR_HOST', async () => {
    fs.writeFileSync(
      path.join(root, '.lockstep', 'config.yaml'),
      `remote: shared\nremotes:\n  shared:\n    url: gs://${BUCKET}/via-endpoint\n    endpoint: ${fake.url}\n`,
    );
    fake.resetLog();
    const pushed = await lockstepEnv({}, 'push');
    expect(pushed).toMatchObject({ code: 0 });
    expect(pushed.stdout + pushed.stderr).toMatch(/pushed 5 objects .* to gs:\/\/test-bucket\/via-endpoint/);
    // Every request used the JSON API's real path forms (the fake refuses the others).
    expect(
      fake.requests.map((r) => r.path).filter((p) => !/^\/(upload\/|download\/)?storage\/v1\//.test(p)),
    ).toEqual([]);
    expect(fake.names(BUCKET).filter((n) => n.startsWith('via-endpoint/'))).toHaveLength(3);

    fs.writeFileSync(
      path.join(root, '.lockstep', 'config.yaml'),
      `remote: shared\nremotes:\n  shared:\n    url: gs://${BUCKET}/x\n    endpoint: ${fake.url}/storage/v1\n`,
    );
    const bad = await lockstepEnv({}, 'push');
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/remotes\.shared\.endpoint/);
  });
});
