import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { repoAt, type Repo } from '../../lib/repo.ts';
import { startServer, stopServer, type ServerOptions } from '../../lib/serving/server.ts';
import { staticSource } from '../../lib/serving/router.ts';
import { PredictionLog, listLogFiles, predictionLogDir, readPredictionLogs } from '../../lib/serving/logs.ts';
import { LocalEndpoint } from '../../lib/endpoints/local.ts';
import { LocalEndpointSource } from '../../lib/serving/local-source.ts';
import { ModelCache } from '../../lib/serving/model-store.ts';
import {
  FIXTURE_LABELS,
  commitFixtureModel,
  fixtureLoader,
  freqForClass,
  toneWav,
  writeFixtureModel,
} from '../support/fixture-model.ts';

let tmp: string;
let repo: Repo;
let app: FastifyInstance | undefined;

beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-serve-'));
  repo = repoAt(tmp);
});
afterEach(async () => {
  await app?.close();
  app = undefined;
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function fixtureSource(spec = {}) {
  const dir = path.join(tmp, 'm');
  writeFixtureModel(dir, spec);
  const model = await fixtureLoader(dir);
  return staticSource([{ deployedModelId: '7', modelVersionId: 'v'.repeat(8), model, percent: 100 }]);
}

async function serve(options: Partial<ServerOptions> & Pick<ServerOptions, 'source'>): Promise<string> {
  const started = await startServer({ env: 'test', ...options });
  app = started.app;
  return started.url;
}

async function post(url: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as any };
}

const wav64 = (freq: number, seconds = 0.5) => toneWav(freq, seconds).toString('base64');

describe('serving server', () => {
  it('server predicts audio and features instances in the Vertex AI shape on both routes', async () => {
    const url = await serve({ source: await fixtureSource() });
    for (const route of [
      '/predict',
      '/v1/projects/p/locations/us-central1/endpoints/123:predict',
      '/v1/endpoints/9:predict',
    ]) {
      const res = await post(url + route, {
        instances: [{ audio: wav64(freqForClass(3)) }, { audio: wav64(freqForClass(5)) }],
      });
      expect(res.status, route).toBe(200);
      expect(res.body.deployedModelId).toBe('7');
      expect(res.body.modelVersionId).toBe('vvvvvvvv');
      expect(res.body.predictions.map((p: any) => p.label)).toEqual([FIXTURE_LABELS[3], FIXTURE_LABELS[5]]);
      const sum = Object.values(res.body.predictions[0].scores as Record<string, number>).reduce(
        (a, b) => a + b,
        0,
      );
      expect(sum).toBeCloseTo(1, 5);
    }
    const feat = await post(url + '/predict', { instances: [{ features: [(1 * 2) / 70, 0.3] }] });
    expect(feat.status).toBe(200);
    expect(feat.body.predictions[0].label).toBe(FIXTURE_LABELS[2]);
    expect(
      (
        await fetch(url + '/v1/projects/p/locations/l/endpoints/1:explain', {
          method: 'POST',
          body: '{}',
          headers: { 'content-type': 'application/json' },
        })
      ).status,
    ).toBe(404);
  });

  it('server predicts a raw audio/wav body as one instance, and rejects a bad one with the reason', async () => {
    const url = await serve({ source: await fixtureSource(), limits: { maxAudioSeconds: 2 } });
    const send = async (body: Buffer, type = 'audio/wav') => {
      const res = await fetch(url + '/predict', { method: 'POST', headers: { 'content-type': type }, body });
      return { status: res.status, body: (await res.json()) as any };
    };
    for (const type of ['audio/wav', 'audio/x-wav']) {
      const res = await send(toneWav(freqForClass(4), 0.5), type);
      expect(res.status, type).toBe(200);
      expect(res.body.predictions.map((p: any) => p.label)).toEqual([FIXTURE_LABELS[4]]);
      expect(res.body.deployedModelId).toBe('7');
    }
    const cases: [Buffer, RegExp][] = [
      [Buffer.from('hello world, not audio'), /^body: .*not a WAV file/],
      [toneWav(440, 0), /^body: too_short: /],
      [toneWav(440, 3), /^body: too long "3\.0 s"/],
    ];
    for (const [body, reason] of cases) {
      const res = await send(body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(reason);
    }
    const other = await send(Buffer.from('x'), 'image/png');
    expect(other.status).toBe(415);
    expect(other.body.error).toMatch(/not application\/json or audio\/wav/);
  });

  const bad: [string, unknown, number, RegExp][] = [
    [
      'not WAV',
      { instances: [{ audio: Buffer.from('hello world, not audio').toString('base64') }] },
      400,
      /not a WAV file/,
    ],
    ['empty audio', { instances: [{ audio: '' }] }, 400, /empty/],
    [
      'WAV without samples',
      { instances: [{ audio: toneWav(440, 0).toString('base64') }] },
      400,
      /^instances\[0\]\.audio: too_short: 0\.000 s is shorter than validate\.min_duration_s 0\.3 s/,
    ],
    ['too long', { instances: [{ audio: wav64(440, 3) }] }, 400, /too long "3\.0 s"/],
    ['wrong feature shape', { instances: [{ features: [1, 2, 3] }] }, 400, /wrong shape "3".*expects 2/],
    ['non-numeric features', { instances: [{ features: ['a'] }] }, 400, /finite numbers/],
    ['no instances key', { inputs: [] }, 400, /expected \{"instances"/],
    ['empty instances', { instances: [] }, 400, /empty list/],
    ['unknown instance key', { instances: [{ image: 'x' }] }, 400, /exactly one of "audio" or "features"/],
    ['not JSON', '{"instances": [', 400, /not JSON/],
  ];
  it.each(bad)(
    'server rejects a bad request (%s) with 400 and the reason',
    async (_name, body, status, reason) => {
      const url = await serve({ source: await fixtureSource(), limits: { maxAudioSeconds: 2 } });
      const res = await post(url + '/predict', body);
      expect(res.status).toBe(status);
      expect(res.body.error).toMatch(reason);
    },
  );

  it.each([
    ['text/plain', 'text/plain'],
    ['text/plain; charset=utf-8', 'text/plain; charset=utf-8'],
  ])('server answers a JSON body sent as %s with 415 naming the content-type', async (_n, type) => {
    const url = await serve({ source: await fixtureSource() });
    const res = await post(
      url + '/predict',
      { instances: [{ audio: wav64(440) }] },
      { 'content-type': type },
    );
    expect(res.status).toBe(415);
    expect(res.body.error).toBe(
      'content-type: not application/json or audio/wav. Send a JSON body or a WAV file.',
    );
  });

  it('server refuses __proto__ and constructor keys in instances and ignores them at the top level, polluting nothing', async () => {
    const url = await serve({ source: await fixtureSource() });
    const audio = wav64(freqForClass(3));
    const raw = (text: string) => post(url + '/predict', text);
    // An own "__proto__" key is not "instances": the body has the wrong shape.
    const top = await raw(`{"__proto__": {"instances": [{"audio": "${audio}"}]}}`);
    expect(top.status).toBe(400);
    expect(top.body.error).toMatch(/^body: expected \{"instances"/);
    for (const key of ['__proto__', 'constructor']) {
      const res = await raw(`{"instances": [{"${key}": {"audio": "${audio}"}}]}`);
      expect(res.status, key).toBe(400);
      expect(res.body.error).toMatch(
        new RegExp(`^instances\\[0\\]: expected exactly one of "audio" or "features", got \\["${key}"\\]`),
      );
      const both = await raw(`{"instances": [{"audio": "${audio}", "${key}": {"polluted": true}}]}`);
      expect(both.status, key).toBe(400);
    }
    // Extra top-level keys are not read: answered, and nothing reached Object.prototype.
    const extra = await raw(
      `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, "instances": [{"audio": "${audio}"}]}`,
    );
    expect(extra.status).toBe(200);
    expect(extra.body.predictions.map((p: any) => p.label)).toEqual([FIXTURE_LABELS[3]]);
    expect(({} as any).polluted).toBeUndefined();
    expect((await fetch(url + '/health')).status).toBe(200);
  });

  it('server answers odd raw WAV bodies with a reason, never a 5xx: 8-bit, stereo, truncated header, JSON sent as audio/wav', async () => {
    const url = await serve({ source: await fixtureSource() });
    const send = async (body: Buffer | string, type = 'audio/wav') => {
      const res = await fetch(url + '/predict', { method: 'POST', headers: { 'content-type': type }, body });
      return { status: res.status, body: (await res.json()) as any };
    };
    const good = toneWav(freqForClass(2), 0.5);
    // 8-bit PCM and stereo are WAV files too: decoded and answered.
    const eight = Buffer.from(good);
    eight.writeUInt16LE(8, 34); // bitsPerSample
    eight.writeUInt16LE(1, 32); // blockAlign
    eight.writeUInt32LE(16000, 28); // byteRate
    // The same bytes read as two channels: half as long, so from a 1 s clip.
    const stereo = Buffer.from(toneWav(freqForClass(2), 1));
    stereo.writeUInt16LE(2, 22); // channels
    stereo.writeUInt16LE(4, 32);
    stereo.writeUInt32LE(64000, 28);
    for (const [name, body] of [
      ['8-bit', eight],
      ['stereo', stereo],
    ] as const) {
      const res = await send(body);
      expect(res.status, name).toBe(200);
      expect(res.body.predictions, name).toHaveLength(1);
    }
    for (const [name, body] of [
      ['truncated header', good.subarray(0, 30)],
      ['header only', good.subarray(0, 44)],
      ['JSON as audio/wav', JSON.stringify({ instances: [{ audio: wav64(440) }] })],
    ] as const) {
      const res = await send(body);
      expect(res.status, name).toBe(400);
      expect(res.body.error, name).toMatch(/^body: /);
    }
    // A WAV sent as JSON is a JSON syntax error, said so.
    const asJson = await send(good, 'application/json');
    expect(asJson.status).toBe(400);
    expect(asJson.body.error).toMatch(/^body: not JSON/);
    expect((await fetch(url + '/health')).status).toBe(200);
  });

  it('server answers a JSON body read from its bytes as it answers the same body spelled otherwise', async () => {
    const url = await serve({ source: await fixtureSource(), limits: { maxAudioSeconds: 2 } });
    const a = wav64(freqForClass(1));
    const b = wav64(freqForClass(6));
    // Escapes and extra keys make the parser read the body as a whole string (JSON.parse).
    const escaped = (s: string) => s.replaceAll('/', '\\/').replace('A', '\\u0041');
    const pairs: [string, string, string][] = [
      [
        'two clips',
        `{"instances":[{"audio":"${a}"},{"audio":"${b}"}]}`,
        `{"instances":[{"audio":"${escaped(a)}"},{"audio":"${escaped(b)}"}],"parameters":{}}`,
      ],
      [
        'whitespace',
        ` {\n "instances" : [ { "audio" : "${a}" } ]\n}\n`,
        `{"instances":[{"audio":"${escaped(a)}"}]}`,
      ],
      ['url-safe base64', '{"instances":[{"audio":"-_-_"}]}', '{"instances":[{"audio":"-_-\\u005f"}]}'],
      ['not a WAV', '{"instances":[{"audio":"QUJD"}]}', '{"instances":[{"audio":"\\u0051UJD"}]}'],
      [
        'too long',
        `{"instances":[{"audio":"${wav64(440, 3)}"}]}`,
        `{"instances":[{"audio":"${escaped(wav64(440, 3))}"}]}`,
      ],
      [
        'too many instances',
        `{"instances":[${Array(33).fill('{"audio":"QUJD"}').join(',')}]}`,
        `{"instances":[${Array(33).fill('{"audio":"\\u0051UJD"}').join(',')}]}`,
      ],
    ];
    for (const [name, plain, spelled] of pairs) {
      const [x, y] = [await post(url + '/predict', plain), await post(url + '/predict', spelled)];
      expect(x.status, name).toBe(y.status);
      expect(x.body, name).toStrictEqual(y.body);
    }
    expect((await post(url + '/predict', pairs[0][1])).body.predictions.map((p: any) => p.label)).toEqual([
      FIXTURE_LABELS[1],
      FIXTURE_LABELS[6],
    ]);
    // A raw control character in the string is not JSON, whichever way the body is read.
    for (const body of [
      `{"instances":[{"audio":"QU\nJD"}]}`,
      `{"instances":[{"audio":"${a.slice(0, 8)}\t${a.slice(8)}"}]}`,
    ]) {
      const res = await post(url + '/predict', body);
      expect(res.status).toBe(400);
      expect(res.body.error).toMatch(/^body: not JSON \(/);
    }
  });

  it('server enforces the body-size limit with 413', async () => {
    const url = await serve({ source: await fixtureSource(), bodyLimit: 10_000 });
    const res = await post(url + '/predict', { instances: [{ audio: wav64(440, 1) }] });
    expect(res.status).toBe(413);
    expect(res.body.error).toBe('body: larger than 10000 bytes. Send fewer instances or shorter clips.');
  });

  it('server answers 503 with Retry-After when too many requests are in flight, then recovers', async () => {
    const url = await serve({ source: await fixtureSource(), maxInFlight: 2, retryAfterSeconds: 3 });
    const { port } = new URL(url);
    // Two requests that send headers and part of the body, then stall: both are in flight.
    const held = [0, 1].map(() => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/predict',
        headers: { 'content-type': 'application/json', 'content-length': '1000' },
      });
      req.on('error', () => undefined);
      const done = new Promise<number>((resolve) =>
        req.on('response', (r) => (r.resume(), resolve(r.statusCode!))),
      );
      req.write('{"instances":');
      return { req, done };
    });
    let overloaded: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 100 && !overloaded; i++) {
      const res = await post(url + '/predict', { instances: [{ features: [0, 0] }] });
      if (res.status === 503) overloaded = res;
      else await new Promise((r) => setTimeout(r, 20));
    }
    expect(overloaded?.headers.get('retry-after')).toBe('3');
    expect(overloaded?.body.error).toMatch(/overloaded/);
    expect((await fetch(url + '/health')).status).toBe(200);
    for (const h of held) h.req.end(' [] }' + ' '.repeat(1000 - 18));
    expect(await Promise.all(held.map((h) => h.done))).toEqual([400, 400]);
    expect((await post(url + '/predict', { instances: [{ features: [0, 0] }] })).status).toBe(200);
  });

  it('server requires the bearer token when one is configured', async () => {
    const url = await serve({ source: await fixtureSource(), token: 's3cret' });
    const body = { instances: [{ features: [0, 0] }] };
    expect((await post(url + '/predict', body)).status).toBe(401);
    expect((await post(url + '/predict', body, { authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(url + '/predict', body, { authorization: 'Bearer s3cret' })).status).toBe(200);
    expect((await fetch(url + '/health')).status).toBe(200);
  });

  it('server answers 500 and logs an error when the model throws', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'));
    const url = await serve({ source: await fixtureSource({ fail: true }), log });
    const res = await post(url + '/predict', { instances: [{ audio: wav64(440) }] });
    expect(res.status).toBe(500);
    expect(res.body.error).toMatch(/deployed model 7: prediction failed/);
    log.flush();
    const entries = readPredictionLogs(log.dir);
    expect(entries.map((e) => [e.status, e.deployedModelId])).toEqual([['error', '7']]);
  });

  it('server logs every prediction as JSON lines and rotates files by size', async () => {
    const log = new PredictionLog(path.join(tmp, 'logs'), { maxBytes: 1500 });
    const url = await serve({ source: await fixtureSource(), log });
    for (let i = 0; i < 12; i++) {
      const res = await post(url + '/predict', { instances: [{ audio: wav64(freqForClass(i % 7)) }] });
      expect(res.status).toBe(200);
    }
    await post(url + '/predict', { instances: [{ audio: 'bm90IGEgd2F2' }] });
    log.flush();
    expect(listLogFiles(log.dir).length).toBeGreaterThan(1);
    for (const f of listLogFiles(log.dir))
      expect(fs.statSync(path.join(log.dir, f)).size).toBeLessThanOrEqual(1500);
    const entries = readPredictionLogs(log.dir);
    expect(entries).toHaveLength(13);
    const ok = entries.filter((e) => e.status === 'ok');
    expect(ok).toHaveLength(12);
    for (const e of ok) {
      expect(e).toMatchObject({ env: 'test', deployedModelId: '7', modelVersionId: 'vvvvvvvv' });
      expect(e.summary).toHaveLength(2);
      expect(Object.keys(e.scores!)).toHaveLength(7);
      expect(e.latencyMs).toBeGreaterThan(0);
      expect(Date.parse(e.time)).not.toBeNaN();
    }
    expect(ok.map((e) => e.label)).toEqual(Array.from({ length: 12 }, (_, i) => FIXTURE_LABELS[i % 7]));
    // Not audio: refused by the input checks of the model it was routed to.
    expect(entries.filter((e) => e.status === 'rejected').map((e) => e.anomalies?.[0]?.kind)).toEqual([
      'unreadable',
    ]);
  });

  it('server routes by the local endpoint traffic split and follows state changes', async () => {
    const endpoint = new LocalEndpoint(repo, 'dev', { loader: fixtureLoader });
    const a = await endpoint.deploy(await commitFixtureModel(repo, { tag: 'a' }), 100);
    const source = new LocalEndpointSource(repo, 'dev', { cache: new ModelCache(fixtureLoader) });
    const log = new PredictionLog(predictionLogDir(tmp, 'dev'));
    const url = await serve({ source, env: 'dev', log, refreshMs: 20 });
    const health = (await (await fetch(url + '/health')).json()) as any;
    expect(health.deployedModels).toEqual([{ id: a.id, modelVersionId: a.model.hash, percent: 100 }]);

    const b = await endpoint.deploy(await commitFixtureModel(repo, { tag: 'b' }), 25);
    expect(fs.existsSync(path.join(tmp, '.lockstep', 'models', b.model.hash, 'fixture.json'))).toBe(true);
    expect((await endpoint.describe()).trafficSplit).toEqual({ [a.id]: 75, [b.id]: 25 });
    await source.refresh();
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const res = await post(url + '/v1/endpoints/dev:predict', { instances: [{ features: [0.01, 0.1] }] });
      counts[res.body.deployedModelId] = (counts[res.body.deployedModelId] ?? 0) + 1;
    }
    expect(counts).toEqual({ [a.id]: 30, [b.id]: 10 });

    await endpoint.setTraffic({ [b.id]: 100 });
    await endpoint.undeploy(a.id);
    await source.refresh();
    const res = await post(url + '/predict', { instances: [{ features: [0.01, 0.1] }] });
    expect(res.body.deployedModelId).toBe(b.id);
    log.flush();
    expect(readPredictionLogs(log.dir).filter((e) => e.deployedModelId === b.id)).toHaveLength(11);
  });

  it('server health answers 503 when nothing is deployed', async () => {
    const source = new LocalEndpointSource(repo, 'empty', { cache: new ModelCache(fixtureLoader) });
    const url = await serve({ source, env: 'empty' });
    const health = await fetch(url + '/health');
    expect(health.status).toBe(503);
    expect(health.headers.get('retry-after')).toBe('1');
    const res = await post(url + '/predict', { instances: [{ features: [0, 0] }] });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/no deployed model takes traffic/);
  });

  it('server stop finishes idle keep-alive clients at once and cuts a request left open after the drain time', async () => {
    const url = await serve({ source: await fixtureSource() });
    const agent = new http.Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) =>
      http.get(url + '/health', { agent }, (res) => res.resume().on('end', resolve)).on('error', reject),
    );
    const t0 = Date.now();
    await stopServer(app!, { drainMs: 5000 });
    // An idle keep-alive connection does not hold the stop up: the stop takes well under the
    // drain time it would otherwise wait out (half of it: room for a loaded machine).
    expect(Date.now() - t0).toBeLessThan(2500);
    agent.destroy();

    const url2 = await serve({ source: await fixtureSource() });
    const { port } = new URL(url2);
    // A client that sends half a request and never the rest.
    const socket = net.connect(Number(port), '127.0.0.1');
    await new Promise((r) => socket.once('connect', r));
    socket.write(
      'POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"instances"',
    );
    socket.resume(); // read what comes, so the close is seen
    const cut = new Promise((r) => socket.once('close', r));
    await new Promise((r) => setTimeout(r, 50));
    const t1 = Date.now();
    await stopServer(app!, { drainMs: 300 });
    const took = Date.now() - t1;
    expect(took).toBeGreaterThanOrEqual(250);
    expect(took).toBeLessThan(3000);
    await cut;
    app = undefined;
  });
});
