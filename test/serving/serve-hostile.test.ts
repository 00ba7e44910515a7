/**
 * Hostile stops of `lockstep serve --workers 2` (a cluster primary and its worker processes, spawned as a
 * user or a container runs it): whatever state it is in when the signal comes (requests in flight,
 * idle keep-alive connections, workers still starting, a worker that crashed, a second signal, a
 * stuck worker), the primary exits within a bound, with its workers gone and their logs shipped.
 */
import { describe, expect, it } from 'vitest';
import { until, within } from '../support/wait.ts';
import { PROMPT_MS, alive, postInvalid, useServeWorkers } from '../support/serve-workers.ts';

const { spawnServe, shipped } = useServeWorkers();

describe('lockstep serve --workers 2 under hostile stops', () => {
  it('both workers die while they drain: exit 1 with one line naming both, no worker left', async () => {
    const s = spawnServe();
    await s.started();
    const workers = s.workers();
    expect(workers).toHaveLength(2);
    for (const w of workers) process.kill(w, 'SIGSTOP');
    s.child.kill('SIGTERM');
    for (const w of workers) process.kill(w, 'SIGKILL');
    expect(await within(PROMPT_MS, s.exited, 'serve to exit')).toEqual({ code: 1, signal: null });
    const lines = s.io.stderr.split('\n').filter((l) => l.startsWith('lockstep: '));
    expect(lines).toHaveLength(1);
    for (const w of workers) expect(lines[0]).toContain(`worker process ${w} exited with SIGKILL`);
  }, 60_000);

  it('a worker killed while it starts: the primary exits (2, as for a worker that cannot start) with one line, no worker left', async () => {
    const s = spawnServe();
    await until(() => s.workers().length === 2, 'the workers to be forked');
    const workers = s.workers();
    process.kill(workers[0]!, 'SIGKILL');
    const exit = await within(PROMPT_MS, s.exited, 'serve to exit');
    await until(() => workers.filter(alive).length === 0, 'the workers to be gone', 5_000);
    expect(exit).toEqual({ code: 2, signal: null });
    expect(s.io.stderr).toMatch(/^lockstep: serve: a worker exited with SIGKILL while starting\. [^\n]*$/m);
  }, 60_000);

  it('Ctrl-C (SIGINT to the whole process group) while serving: every worker drains, exit 0', async () => {
    const s = spawnServe();
    const { base } = await s.started();
    expect(await postInvalid(base)).toBe(400);
    const workers = s.workers();
    process.kill(-s.child.pid!, 'SIGINT');
    const exit = await within(PROMPT_MS, s.exited, 'serve to exit');
    expect(exit).toEqual({ code: 0, signal: null });
    expect(workers.filter(alive)).toEqual([]);
    expect((await shipped()).length).toBe(1);
  }, 60_000);
});
