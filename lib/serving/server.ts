/**
 * The prediction server (fastify). Vertex AI request/response shapes on
 * `POST /v1/.../endpoints/<id>:predict` and on the custom-container predict route
 * (AIP_PREDICT_ROUTE, default `/predict`); a health route (AIP_HEALTH_ROUTE, default `/health`);
 * a web page at `/`. Bad requests get 400 with the reason (audio the model's input schema refuses:
 * the same reason text as `lockstep validate`, plus `rejected` per instance), oversized bodies 413, and under
 * overload a bounded in-flight counter answers 503 with Retry-After instead of queueing.
 */
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import type { PredictionLog } from './logs.ts';
import { Predictor, type PredictLimits } from './predict.ts';
import type { ShadowTraffic } from './shadow.ts';
import type { ModelSource } from './router.ts';
import { InputAnomalyError } from './checks.ts';
import type { OnErrorAnomaly } from '../validation/clip.ts';
import { renderPageWithPolicy } from './page.ts';
import { readPlainAudioBody } from './json-body.ts';

export interface ServerOptions {
  source: ModelSource;
  /** Environment name (logs, page title). */
  env: string;
  log?: PredictionLog;
  /** Require `Authorization: Bearer <token>` on predict and describe routes. */
  token?: string;
  /** Largest request body in bytes (default 16 MiB: a 30 s 16-bit 48 kHz stereo clip in base64). */
  bodyLimit?: number;
  /** Requests being handled at once before new ones get 503 (default 64). */
  maxInFlight?: number;
  /** Seconds clients should wait after a 503 (default 1). */
  retryAfterSeconds?: number;
  /** Custom-container predict route (default `/predict`). */
  predictRoute?: string;
  /** Custom-container health route (default `/health`). */
  healthRoute?: string;
  limits?: PredictLimits;
  /** Audio with an error anomaly: `reject` (default, 400) or `flag` (predict, report the anomalies). */
  onErrorAnomaly?: OnErrorAnomaly;
  /** How often the source re-reads its deployment (ms, default 500; 0 = never). */
  refreshMs?: number;
  /**
   * The shadow worker a shadow step's mirrored requests go to (default: one of the server's own,
   * with ShadowTraffic's defaults). It is stopped with the server.
   */
  shadow?: ShadowTraffic;
}

const VERTEX_PREDICT = /^\/v1\/(?:projects\/[^/]+\/locations\/[^/]+\/)?endpoints\/[^/:]+:predict$/;

/** Builds the fastify app (not listening). */
export async function createServer(options: ServerOptions): Promise<FastifyInstance> {
  const predictRoute = options.predictRoute ?? '/predict';
  const healthRoute = options.healthRoute ?? '/health';
  const maxInFlight = options.maxInFlight ?? 64;
  const retryAfter = String(options.retryAfterSeconds ?? 1);
  const predictor = new Predictor(options.source, {
    env: options.env,
    log: options.log,
    limits: options.limits,
    onErrorAnomaly: options.onErrorAnomaly,
    shadow: options.shadow,
  });
  const token = options.token ? Buffer.from(`Bearer ${options.token}`) : undefined;
  const tokenDigest = token ? createHash('sha256').update(token).digest() : undefined;

  const app = Fastify({
    bodyLimit: options.bodyLimit ?? 16 * 1024 * 1024,
    logger: false,
    return503OnClosing: true,
    // No regex scan of every JSON body for "__proto__"/"constructor" keys (two passes over a
    // 100 KB base64 string per request): the predict routes read the body only through
    // `parseInstances`, which takes `instances` and refuses any instance key but `audio` or
    // `features`, and nothing merges a body into another object.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
  });

  // The usual body, {"instances": [{"audio": "<base64>"}]}, is read from its bytes (json-body.ts);
  // any other JSON body goes to fastify's own parser, as a string of the whole body as before,
  // so its errors and results are fastify's.
  const parseJson = app.getDefaultJsonParser('ignore', 'ignore');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body: Buffer, done) => {
    const plain = readPlainAudioBody(body);
    if (plain) done(null, plain);
    else void parseJson(req, body.toString('utf8'), done);
  });
  // A raw WAV body is one audio instance: no base64, no JSON parse of a 100 KB string.
  app.addContentTypeParser(
    ['audio/wav', 'audio/wave', 'audio/x-wav'],
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );
  // fastify also parses text/plain into a string, which the predict routes would then call a
  // body of the wrong shape; a JSON body sent as text is a content-type mistake, a 415 that says so.
  app.removeContentTypeParser('text/plain');

  let inFlight = 0;
  // Only predictions count: health checks and the page must answer even when predictions queue.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.method !== 'POST') return done();
    if (inFlight >= maxInFlight) {
      reply
        .code(503)
        .header('retry-after', retryAfter)
        .send({ error: `server: overloaded (${inFlight} requests in flight). Retry after ${retryAfter} s.` });
      return;
    }
    inFlight++;
    reply.raw.once('close', () => inFlight--);
    done();
  });

  const authorized = (req: FastifyRequest, reply: FastifyReply): boolean => {
    if (!token) return true;
    // Compared as digests: equal lengths always, so neither the bytes nor the length of the
    // expected header leak through timing.
    const got = createHash('sha256')
      .update(req.headers.authorization ?? '')
      .digest();
    if (timingSafeEqual(got, tokenDigest!)) return true;
    reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .send({ error: 'authorization: missing or wrong bearer token. Send "Authorization: Bearer <token>".' });
    return false;
  };

  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status === 503) reply.header('retry-after', retryAfter);
    let message = err.message.split('\n')[0];
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
      message = `body: larger than ${app.initialConfig.bodyLimit} bytes. Send fewer instances or shorter clips.`;
    else if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      message = 'content-type: not application/json or audio/wav. Send a JSON body or a WAV file.';
    else if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') message = 'body: empty. Send {"instances": [...]}.';
    else if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
      message = `body: not JSON (${message}). Send {"instances": [...]}.`;
    // Input check refusals also say which instances and what was found, for clients to act on.
    if (err instanceof InputAnomalyError)
      return reply.code(status).send({ error: message, rejected: err.rejected });
    reply.code(status).send({ error: message });
  });

  const handlePredict = async (req: FastifyRequest, reply: FastifyReply) => {
    if (!authorized(req, reply)) return reply;
    return predictor.predict(req.body);
  };

  const page = renderPageWithPolicy({ env: options.env, predictRoute });
  app.get('/', async (_req, reply) =>
    reply
      .type('text/html; charset=utf-8')
      .header('content-security-policy', page.csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(page.html),
  );

  app.get(healthRoute.replace(/:/g, '::'), async (_req, reply) => {
    const models = options.source.models();
    const serving = models.filter((m) => m.percent > 0);
    if (serving.length === 0)
      return reply
        .code(503)
        .header('retry-after', retryAfter)
        .send({ status: 'no model deployed', env: options.env });
    return {
      status: 'ok',
      env: options.env,
      deployedModels: models.map((m) => ({
        id: m.deployedModelId,
        modelVersionId: m.modelVersionId,
        percent: m.percent,
      })),
      // Mirrored, failed, timed-out and skipped shadow predictions, once a shadow step began.
      ...(predictor.shadow.used ? { shadow: predictor.shadow.counts() } : {}),
    };
  });

  app.get('/v1/endpoint', async (req, reply) => {
    if (!authorized(req, reply)) return reply;
    return {
      env: options.env,
      deployedModels: options.source.models().map((m) => ({
        id: m.deployedModelId,
        modelVersionId: m.modelVersionId,
        modelId: m.model.id,
        labels: m.model.labels,
        percent: m.percent,
      })),
    };
  });

  // A literal ':' in a fastify path is written '::' (Vertex predict routes end in ':predict').
  app.post(predictRoute.replace(/:/g, '::'), handlePredict);
  // Vertex AI paths carry a ':' (`.../endpoints/123:predict`), which fastify's router reads as a
  // parameter marker, so they are matched by pattern under one wildcard.
  app.post('/v1/*', async (req, reply) => {
    if (!VERTEX_PREDICT.test(req.url.split('?')[0]))
      return reply
        .code(404)
        .send({ error: `${req.url}: no such route. POST to ${predictRoute} or /v1/endpoints/<id>:predict.` });
    return handlePredict(req, reply);
  });

  let timer: NodeJS.Timeout | undefined;
  if (options.source.refresh) {
    await options.source.refresh();
    const every = options.refreshMs ?? 500;
    if (every > 0) {
      timer = setInterval(() => void options.source.refresh!().catch(() => undefined), every);
      timer.unref();
    }
  }
  app.addHook('onClose', async () => {
    if (timer) clearInterval(timer);
    // At once, even with a candidate stuck in a prediction: shadow work answers no one.
    await predictor.shadow.close();
    options.log?.flush();
    await options.source.close?.();
  });
  return app;
}

export interface ListenOptions {
  /** Bind address (default 127.0.0.1; `0.0.0.0` inside a container). */
  host?: string;
  /** Port (default 0: any free port). */
  port?: number;
}

/** Starts the server and returns its base URL. */
export async function startServer(
  options: ServerOptions & ListenOptions,
): Promise<{ app: FastifyInstance; url: string }> {
  const app = await createServer(options);
  const host = options.host ?? '127.0.0.1';
  await app.listen({ host, port: options.port ?? 0 });
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : options.port;
  const shownHost = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  return { app, url: `http://${shownHost}:${port}` };
}

/**
 * Stops accepting connections, lets requests in flight finish for up to `drainMs` (default
 * 10 000), then cuts whatever connections are left (a client that keeps a request open must not
 * keep the server, and the log upload after it, from stopping before the platform's SIGKILL).
 */
export async function stopServer(app: FastifyInstance, options: { drainMs?: number } = {}): Promise<void> {
  const force = setTimeout(() => app.server.closeAllConnections(), options.drainMs ?? 10_000);
  force.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(force);
  }
}
