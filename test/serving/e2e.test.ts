/**
 * End to end with a real trained model (TensorFlow.js MLP on the tiny synthetic corpus), the
 * real CLI, a real `lockstep serve` child process and headless Chromium on the web page.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { createTmpRepo, type TmpRepo } from '../support/tmp-repo.ts';
import { makeTinyCorpus } from '../support/corpus.ts';
import { makeAudioModel, labelOf } from '../support/audio-model.ts';
import { commitArtifact } from '../../lib/store/artifacts.ts';
import { writeLockfile } from '../../lib/lockfile.ts';
import { main } from '../../lib/cli/main.ts';
import { memoryOutput } from '../../lib/output.ts';
import { readPredictionLogs, predictionLogDir } from '../../lib/serving/logs.ts';
import type { ArtifactRef } from '../../lib/types.ts';

const BIN = path.resolve('bin/lockstep.mjs');
let t: TmpRepo;
let files: string[];
let refs: { good: ArtifactRef; twin: ArtifactRef; random: ArtifactRef };
let server: ChildProcess | undefined;
let url = '';

/** Commits `dir` as out/model and returns its ref. */
async function pin(dir: string): Promise<ArtifactRef> {
  fs.rmSync(path.join(t.root, 'out/model'), { recursive: true, force: true });
  fs.cpSync(dir, path.join(t.root, 'out/model'), { recursive: true });
  return commitArtifact(t.repo, 'out/model');
}

async function lock(ref: ArtifactRef): Promise<void> {
  await writeLockfile(t.repo, {
    schema: 1,
    data: {},
    stages: { train: { code: 'c'.repeat(64), deps: [], params: {}, outs: [ref] } },
  });
}

async function cli(...args: string[]) {
  const out = memoryOutput();
  const code = await main(['-C', t.root, ...args], out);
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

async function health(): Promise<{ deployedModels?: { id: string; percent: number }[] }> {
  return (await (await fetch(url + '/health')).json()) as never;
}

/** Waits until the server's view matches: polls up to a 30 s deadline, not a count of polls. */
async function until(check: () => Promise<boolean>, what = 'the endpoint state'): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`server did not pick up ${what} within 30 s`);
}

async function drive(n: number): Promise<Record<string, number>> {
  const by: Record<string, number> = {};
  const before = loggedLines();
  for (let i = 0; i < n; i++) {
    const res = await fetch(url + '/predict', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        instances: [{ audio: fs.readFileSync(files[i % files.length]).toString('base64') }],
      }),
    });
    const body = (await res.json()) as { deployedModelId: string };
    by[body.deployedModelId] = (by[body.deployedModelId] ?? 0) + 1;
  }
  // The server appends a request's log line just after it answers, in its own process: wait
  // until all of them are on disk, or a reconcile that follows may read one line short.
  await until(async () => loggedLines() >= before + n, `the log lines of ${n} predictions`);
  return by;
}

/** Prediction log lines of the dev environment on disk (the server's and the CLI's). */
function loggedLines(): number {
  return readPredictionLogs(predictionLogDir(t.root, 'dev')).length;
}

beforeAll(async () => {
  t = await createTmpRepo({
    'promotion/dev.yaml':
      'branch: dev\nendpoint: { kind: local }\ncanary:\n  steps: [50, 100]\n  analysis: { max_error_rate: 0.05, max_p99_ms: 2000, max_divergence: 0.3, min_requests: 10, min_effect: { class_share: 1, error_rate: 0.6, latency_auc: 0.95 } }\n',
  });
  files = await makeTinyCorpus(path.join(t.root, 'corpus'), { speakers: 3 });
  const models = path.join(t.root, 'models');
  await makeAudioModel(path.join(models, 'good'), files, { epochs: 40 });
  // Same predictions, different artifact (a candidate that should pass the canary).
  fs.cpSync(path.join(models, 'good'), path.join(models, 'twin'), { recursive: true });
  const card = path.join(models, 'twin', 'card.json');
  fs.writeFileSync(
    card,
    JSON.stringify({ ...JSON.parse(fs.readFileSync(card, 'utf8')), note: 'retrained twin' }, null, 2),
  );
  // Random weights of the same shape (a candidate that must be rolled back).
  fs.cpSync(path.join(models, 'good'), path.join(models, 'random'), { recursive: true });
  const weights = path.join(models, 'random', 'weights.bin');
  const w = new Float32Array(fs.readFileSync(weights).byteLength / 4);
  let s = 12345;
  for (let i = 0; i < w.length; i++) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    w[i] = (s / 2 ** 31 - 0.5) * 6;
  }
  fs.writeFileSync(weights, Buffer.from(w.buffer));
  refs = {
    good: await pin(path.join(models, 'good')),
    twin: await pin(path.join(models, 'twin')),
    random: await pin(path.join(models, 'random')),
  };
}, 180_000);

afterAll(async () => {
  server?.kill('SIGTERM');
  await t?.cleanup();
});

describe('serving end to end', () => {
  it('cli canary reconcile, endpoint describe, predict and serve work on a real model', async () => {
    await lock(refs.good);
    const first = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree');
    expect(first.stdout).toMatch(/^first deploy: [0-9a-f]{12} serves 100%/);
    expect(first.code).toBe(0);
    expect(fs.existsSync(path.join(t.root, '.lockstep/models', refs.good.hash, 'model.json'))).toBe(true);

    const desc = await cli('endpoint', 'describe', '--env', 'dev', '--json');
    expect(JSON.parse(desc.stdout)).toMatchObject({ kind: 'local', name: 'dev', trafficSplit: { '1': 100 } });
    expect((await cli('endpoint', 'describe', '--env', 'dev')).stdout).toMatch(
      /endpoint dev \(local\): 1 deployed model\n {2}1 {4}[0-9a-f]{12} {2}100%/,
    );

    const pred = await cli('predict', files[0], files[3], '--env', 'dev', '--json');
    expect(pred.code).toBe(0);
    const res = JSON.parse(pred.stdout);
    expect(res.deployedModelId).toBe('1');
    expect(res.modelVersionId).toBe(refs.good.hash);
    expect(res.predictions).toHaveLength(2);
    const correct = res.predictions.filter(
      (p: { label: string }, i: number) => p.label === labelOf([files[0], files[3]][i]),
    ).length;
    expect(correct).toBeGreaterThanOrEqual(1);
    const logged = readPredictionLogs(predictionLogDir(t.root, 'dev'));
    expect(logged).toHaveLength(2);
    expect(logged[0].summary!.length).toBeGreaterThan(10);

    server = spawn(process.execPath, [BIN, '-C', t.root, 'serve', '--env', 'dev'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    url = await new Promise<string>((resolve, reject) => {
      let text = '';
      server!.stdout!.on('data', (d) => {
        text += d;
        const m = /serving dev on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
        if (m) resolve(m[1]);
      });
      server!.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
      setTimeout(() => reject(new Error('serve did not start')), 60_000);
    });
    expect(await drive(3)).toEqual({ '1': 3 });
  }, 120_000);

  it('cli canary rolls back a random-weights candidate and exits non-zero, then takes a good one to 100%', async () => {
    expect(url).not.toBe('');
    await lock(refs.random);
    const start = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree');
    expect(start.stdout).toMatch(/starting canary of [0-9a-f]{12}: step 1\/2 at 50%/);
    await until(async () => (await health()).deployedModels?.length === 2);
    expect(await drive(28)).toEqual({ '1': 14, '2': 14 });
    const rollback = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree');
    expect(rollback.code).toBe(1);
    expect(rollback.stdout).toMatch(
      /^step 1\/2 at 50%: agreement with stable \d+% \(\d+\/14 paired requests\) is significantly below the 70% required .*rolling back to stable 1, canary at 0%/,
    );
    expect(rollback.stderr).toMatch(/lockstep: canary dev: step 1\/2/);
    await until(async () => (await health()).deployedModels?.find((m) => m.id === '2')?.percent === 0);
    expect(await drive(4)).toEqual({ '1': 4 });
    const again = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree');
    expect(again.code).toBe(1);
    expect(again.stdout).toMatch(/was rolled back/);

    await lock(refs.twin);
    expect((await cli('canary', 'reconcile', '--env', 'dev', '--working-tree')).stdout).toMatch(
      /starting canary/,
    );
    await until(async () => (await health()).deployedModels?.find((m) => m.id === '3')?.percent === 50);
    expect(await drive(28)).toEqual({ '1': 14, '3': 14 });
    const done = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree');
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(
      /^step 1\/2: error rate 0\.0%, p99 \d+ ms, agreement with stable 100% \(14\/14 paired requests\).*: completed all 2 canary steps/,
    );
    const twice = await cli('canary', 'reconcile', '--env', 'dev', '--working-tree', '--json');
    expect(JSON.parse(twice.stdout)).toMatchObject({ action: 'none', changed: false });
    await until(
      async () =>
        JSON.stringify((await health()).deployedModels?.map((m) => [m.id, m.percent])) === '[["3",100]]',
    );
    expect(await drive(2)).toEqual({ '3': 2 });

    // --ref reads the pinned model from git objects instead of the working tree.
    await lock(refs.random);
    const commit = t.commit('pin the random model');
    await lock(refs.twin);
    const atRef = await cli('canary', 'reconcile', '--env', 'dev', '--ref', commit, '--dry', '--json');
    expect(JSON.parse(atRef.stdout)).toMatchObject({
      action: 'start',
      status: { candidateHash: refs.random.hash },
    });
    expect(
      JSON.parse(
        (await cli('canary', 'reconcile', '--env', 'dev', '--working-tree', '--dry', '--json')).stdout,
      ),
    ).toMatchObject({ action: 'none' });
    // By default the environment's branch decides, whatever the working tree holds.
    const missing = await cli('canary', 'reconcile', '--env', 'dev', '--dry');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/dev: environment branch "dev" does not exist/);
    t.git('branch', 'dev', commit);
    expect(
      JSON.parse((await cli('canary', 'reconcile', '--env', 'dev', '--dry', '--json')).stdout),
    ).toMatchObject({ action: 'start', status: { candidateHash: refs.random.hash } });
  }, 120_000);

  it('serve follows the Vertex AI custom-container contract (AIP_* variables)', async () => {
    const net = await import('node:net');
    const port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const predictRoute = '/v1/endpoints/123/deployedModels/456:predict';
    const { FakeGcs } = await import('../support/fake-gcs.ts');
    const { readLogs } = await import('../../lib/monitoring/logs.ts');
    const os = await import('node:os');
    const gcs = await FakeGcs.start();
    const container = spawn(process.execPath, [BIN, 'serve'], {
      cwd: t.root,
      env: {
        ...process.env,
        AIP_HTTP_PORT: String(port),
        AIP_HEALTH_ROUTE: '/healthz',
        AIP_PREDICT_ROUTE: predictRoute,
        AIP_STORAGE_URI: path.join(t.root, 'models', 'good'),
        AIP_DEPLOYED_MODEL_ID: '456',
        AIP_ENDPOINT_ID: '123',
        // Set by a Vertex deploy when the policy has logs: gs://...
        LOCKSTEP_LOG_URI: 'gs://logs-bucket/vertex',
        STORAGE_EMULATOR_HOST: gcs.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const base = `http://127.0.0.1:${port}`;
      await new Promise<void>((resolve, reject) => {
        container.stdout!.on('data', (d) => String(d).includes('serving') && resolve());
        container.on('exit', (code) => reject(new Error(`serve exited ${code}`)));
        setTimeout(() => reject(new Error('container mode did not start')), 60_000);
      });
      expect((await fetch(base + '/healthz')).status).toBe(200);
      const res = await fetch(base + predictRoute, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ instances: [{ audio: fs.readFileSync(files[1]).toString('base64') }] }),
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        deployedModelId: string;
        modelVersionId: string;
        predictions: { label: string }[];
      };
      expect(body.deployedModelId).toBe('456');
      expect(body.modelVersionId).toMatch(/^[0-9a-f]{64}$/);
      expect(body.predictions).toHaveLength(1);
      const logDir = path.join(t.root, '.lockstep/logs/vertex-123');
      await until(async () => readPredictionLogs(logDir).length > 0);
      expect(readPredictionLogs(logDir).map((e) => e.deployedModelId)).toEqual(['456']);
      // On SIGTERM (how Vertex stops a replica) the container ships its log before exiting.
      const exited = new Promise((resolve) => container.once('exit', resolve));
      container.kill('SIGTERM');
      expect(await exited).toBe(0);
      const host = os.hostname().replace(/[^A-Za-z0-9._-]+/g, '-');
      expect(gcs.names('logs-bucket')).toEqual([
        expect.stringMatching(new RegExp(`^vertex/456-${host}/predictions-.*\\.jsonl$`)),
      ]);
      expect(await readLogs('gs://logs-bucket/vertex', { apiEndpoint: gcs.url })).toEqual(
        readPredictionLogs(logDir),
      );
    } finally {
      container.kill('SIGTERM');
      await gcs.close();
    }
  }, 90_000);

  it('web page uploads a demo WAV and shows the label, the bar chart and the model that answered', async () => {
    expect(url).not.toBe('');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--use-fake-ui-for-media-stream',
        '--use-fake-device-for-media-stream',
      ],
    });
    try {
      const page = await browser.newPage({ viewport: { width: 900, height: 700 } });
      // The page runs under its own restrictive policy: only its hashed inline script and style.
      const violations: string[] = [];
      page.on('console', (m) => {
        if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
      });
      const res = await page.goto(url + '/');
      expect(res?.headers()['content-security-policy']).toMatch(/^default-src 'none'; script-src 'sha256-/);
      expect(res?.headers()['content-security-policy']).not.toMatch(/unsafe-inline|unsafe-eval/);
      await page.setInputFiles('#file', files[2]);
      await page.waitForSelector('#chart .row', { timeout: 20_000 });
      const label = await page.textContent('#label');
      expect(['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'surprise']).toContain(label);
      expect(await page.locator('#chart .row').count()).toBe(7);
      expect(await page.textContent('#model')).toMatch(/deployed model 3 · version [0-9a-f]{12}/);
      expect(await page.locator('#chart .row.top').getAttribute('data-label')).toBe(label);
      fs.mkdirSync('test-output', { recursive: true });
      await page.screenshot({ path: 'test-output/serving-page.png', fullPage: true });

      // Recording: Chromium's fake microphone (a beep) → MediaRecorder → Web Audio → WAV in the page.
      await page.click('#record');
      await page.locator('#record', { hasText: 'Stop' }).waitFor({ timeout: 20_000 });
      await page.waitForTimeout(1200);
      await page.click('#record');
      await page.locator('#status', { hasText: /^recording answered/ }).waitFor({ timeout: 20_000 });
      expect(await page.locator('#chart .row').count()).toBe(7);
      expect(violations).toEqual([]);
    } finally {
      await browser.close();
    }
  }, 120_000);
});
