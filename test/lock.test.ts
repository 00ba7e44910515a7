import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { lockPath, readLock, withRepoLock } from '../lib/lock.ts';
import { LockedError } from '../lib/errors.ts';
import { memoryOutput } from '../lib/output.ts';
import { main } from '../lib/cli/main.ts';
import type { TmpRepo } from './support/tmp-repo.ts';
import { createPipelineRepo, FIXTURE_PIPELINE } from './pipeline/helpers.ts';

const HOLDER = fileURLToPath(new URL('./pipeline/fixtures/hold-lock.ts', import.meta.url));

let t: TmpRepo | undefined;
let holder: ChildProcess | undefined;
afterEach(async () => {
  if (holder && holder.exitCode === null) holder.kill('SIGKILL');
  holder = undefined;
  delete process.env.LOCKSTEP_LOCK_TIMEOUT_MS;
  await t?.cleanup();
  t = undefined;
});

/**
 * Starts a process holding the lock until `releaseLock()` or for at most `ms`; resolves with its
 * pid once it has it.
 */
function holdLock(root: string, command: string, ms: number): Promise<number> {
  holder = spawn(process.execPath, ['--import', 'tsx', HOLDER, root, command, String(ms)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const child = holder;
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d) => {
      buf += d;
      const m = /locked (\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`holder exited ${code} before locking`)));
  });
}

/** Tells the holder to release the lock now. */
function releaseLock(): void {
  holder!.stdin!.end('release\n');
}

describe('repository lock', () => {
  it('lock makes a concurrent repro wait, naming the holder, then run', async () => {
    t = await createPipelineRepo();
    // Held until the repro says it is waiting (a timed hold may end before a slow start-up
    // reaches the lock, and then nothing waits).
    const pid = await holdLock(t.root, 'push', 60_000);
    const mem = memoryOutput();
    let released = false;
    let ranWhileHeld = false;
    const out = {
      ...mem,
      err: (line: string) => {
        mem.err(line);
        if (/^\w+: running/.test(line) && !released) ranWhileHeld = true;
        if (line.includes(`waiting for lockstep pid ${pid} (push)`) && !released) {
          released = true;
          releaseLock();
        }
      },
    };
    const code = await main(['-C', t.root, 'repro', '--pipeline', FIXTURE_PIPELINE], out);
    expect(code, mem.stderr.join('\n')).toBe(0);
    expect(released, mem.stderr.join('\n')).toBe(true);
    expect(ranWhileHeld).toBe(false);
    expect(mem.stderr.some((l) => /^\w+: running/.test(l))).toBe(true);
    expect(fs.existsSync(lockPath(t.repo))).toBe(false);
  });

  it('lock makes a concurrent repro fail clearly after the timeout, changing nothing', async () => {
    t = await createPipelineRepo();
    const pid = await holdLock(t.root, 'repro', 20_000);
    process.env.LOCKSTEP_LOCK_TIMEOUT_MS = '300';
    const out = memoryOutput();
    const code = await main(['-C', t.root, 'repro', '--pipeline', FIXTURE_PIPELINE], out);
    expect(code).toBe(1);
    const last = out.stderr.at(-1)!;
    expect(last).toMatch(
      new RegExp(
        `^lockstep: \\.lockstep/lock: held by lockstep pid ${pid} \\(repro\\) on .*; gave up after 300ms\\. Wait for it to finish`,
      ),
    );
    expect(t.exists('artifacts.lock.yaml')).toBe(false);
    expect(t.exists('out')).toBe(false);
    expect(readLock(t.repo)!.pid).toBe(pid);
  });

  it('lock left by a dead process is cleared', async () => {
    t = await createPipelineRepo();
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], {
      encoding: 'utf8',
    });
    const deadPid = Number(dead.stdout);
    fs.mkdirSync(t.repo.stateDir, { recursive: true });
    fs.writeFileSync(
      lockPath(t.repo),
      JSON.stringify({
        pid: deadPid,
        hostname: os.hostname(),
        command: 'repro',
        started: '2020-01-01T00:00:00Z',
      }),
    );
    const out = memoryOutput();
    const result = await withRepoLock(t.repo, 'add', async () => readLock(t!.repo), { out, timeoutMs: 2000 });
    expect(result!.pid).toBe(process.pid);
    expect(result!.command).toBe('add');
    expect(out.stderr).toEqual([`clearing stale lock of lockstep pid ${deadPid} (repro): process is gone`]);
    expect(fs.existsSync(lockPath(t.repo))).toBe(false);
    expect(fs.readdirSync(t.repo.stateDir).filter((f) => f.startsWith('lock'))).toEqual([]);
  });

  it('lock that is unreadable debris for a while is cleared', async () => {
    t = await createPipelineRepo();
    fs.mkdirSync(t.repo.stateDir, { recursive: true });
    fs.writeFileSync(lockPath(t.repo), 'garbage');
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(lockPath(t.repo), old, old);
    const out = memoryOutput();
    expect(await withRepoLock(t.repo, 'add', async () => 'ran', { out, timeoutMs: 2000 })).toBe('ran');
    expect(out.stderr).toEqual(['clearing unreadable .lockstep/lock']);
  });

  it('lock is re-entrant within a process and released after an error', async () => {
    t = await createPipelineRepo();
    const inner = await withRepoLock(t.repo, 'repro', () =>
      withRepoLock(t!.repo, 'add', async () => 'nested'),
    );
    expect(inner).toBe('nested');
    await expect(
      withRepoLock(t.repo, 'repro', async () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(fs.existsSync(path.join(t.repo.stateDir, 'lock'))).toBe(false);
  });

  it('lock times out with LockedError when another process holds it', async () => {
    t = await createPipelineRepo();
    await holdLock(t.root, 'pull', 20_000);
    await expect(withRepoLock(t.repo, 'add', async () => 1, { timeoutMs: 200 })).rejects.toBeInstanceOf(
      LockedError,
    );
  });
});
