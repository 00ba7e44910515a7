/**
 * `lockstep serve --env <env>`: serve the environment's local endpoint over HTTP (Vertex AI
 * request/response shapes, web page at `/`), following traffic changes the canary makes. With
 * AIP_STORAGE_URI (or --model-dir) set it runs as the Vertex AI custom serving container instead.
 * With --ship-logs (or $LOCKSTEP_LOG_URI, or a gs:// `logs:` in the policy) the prediction log
 * files are uploaded to that gs:// prefix periodically and on shutdown (lib/serving/ship.ts).
 * Audio the answering model's training schema refuses gets 400, or is predicted and flagged with
 * the policy's `serving.on_error_anomaly: flag` ($LOCKSTEP_ON_ERROR_ANOMALY in container mode).
 */
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { LockstepError, UsageError } from '../../errors.ts';

function intOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0)
      throw new UsageError(`${name}: not a whole number "${v}". Pass e.g. 8080.`);
    return n;
  };
}

function secondsOption(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0)
      throw new UsageError(`${name}: not a positive number of seconds "${v}". Pass e.g. 30.`);
    return n;
  };
}

export function register(program: Command, io: CliIO): void {
  program
    .command('serve')
    .description('serve predictions for an environment (local endpoint, or the Vertex AI container contract)')
    .option('-e, --env <env>', 'environment whose local endpoint to serve', 'dev')
    .option('--host <addr>', 'bind address (default 127.0.0.1; 0.0.0.0 when AIP_HTTP_PORT is set)')
    .option(
      '-p, --port <n>',
      'port (default AIP_HTTP_PORT, then the policy port, then any free port)',
      intOption('--port'),
    )
    .option('--token <token>', 'require "Authorization: Bearer <token>" (default $LOCKSTEP_SERVE_TOKEN)')
    .option(
      '--max-in-flight <n>',
      'predictions in flight before answering 503 (default 64)',
      intOption('--max-in-flight'),
    )
    .option('--model-dir <dir>', 'serve this one model directory (as AIP_STORAGE_URI does)')
    .option('-w, --workers <n>', 'server processes sharing the port (default 1)', intOption('--workers'))
    .option(
      '--ship-logs <gs://bucket/prefix>',
      "upload this server's prediction logs there (default $LOCKSTEP_LOG_URI, then a gs:// logs: in the policy)",
    )
    .option(
      '--ship-interval <seconds>',
      'seconds between log uploads (default 30)',
      secondsOption('--ship-interval'),
    )
    .option(
      '--stop-timeout <seconds>',
      'with --workers: seconds workers get to drain and ship logs after SIGTERM before they are killed (default 30)',
      secondsOption('--stop-timeout'),
    )
    .action(async (opts: ServeOptions) => {
      const cluster = (await import('node:cluster')).default;
      const { resolveShipTarget } = await import('../../serving/ship.ts');
      // A malformed --ship-logs / $LOCKSTEP_LOG_URI fails before any model is loaded.
      resolveShipTarget({ flag: opts.shipLogs });
      if ((opts.workers ?? 1) > 1 && cluster.isPrimary) {
        await superviseWorkers(opts.workers!, (opts.stopTimeout ?? 30) * 1000, io);
        return;
      }
      if (cluster.isWorker) {
        // However this process ends (stopped, or failing to start: a port in use, a model that
        // does not load), its channel to the primary would keep it alive for good, and the
        // primary waiting for its exit: close the channel.
        try {
          await serveProcess(opts, io, undefined);
        } finally {
          cluster.worker?.disconnect();
        }
        return;
      }
      // Alone: the stop signals are handled from here on, before the model loads. As PID 1 in a
      // container a signal with no handler is ignored, so a SIGTERM during start-up would wait
      // for the platform's SIGKILL; it now stops the server as soon as it is up. A second
      // signal exits at once.
      // The handlers stay until the process exits: a second signal while it finishes (logs
      // shipping, the drain) still exits at once; they keep nothing alive.
      await serveProcess(opts, io, stopSignals(io));
    });
}

/**
 * The first SIGTERM or SIGINT resolves `requested`; a second one exits at once (143 or 130),
 * in one line, whatever the process is waiting on.
 */
function stopSignals(io: CliIO): Promise<void> {
  let first: StopSignal | undefined;
  let resolve!: () => void;
  const requested = new Promise<void>((r) => (resolve = r));
  const on = (sig: StopSignal) => {
    if (first === undefined) {
      first = sig;
      resolve();
      return;
    }
    io.err(`${sig} again: exiting at once (prediction logs not shipped yet stay in .lockstep/logs/).`);
    process.exit(SIGNAL_EXIT[sig]);
  };
  process.on('SIGTERM', () => on('SIGTERM'));
  process.on('SIGINT', () => on('SIGINT'));
  return requested;
}

interface ServeOptions {
  env: string;
  host?: string;
  port?: number;
  token?: string;
  maxInFlight?: number;
  modelDir?: string;
  workers?: number;
  shipLogs?: string;
  shipInterval?: number;
  stopTimeout?: number;
}

/** One serving process: alone (`stopRequested` settles on the first stop signal) or one of the primary's workers. */
async function serveProcess(
  opts: ServeOptions,
  io: CliIO,
  stopRequested: Promise<void> | undefined,
): Promise<void> {
  const cluster = (await import('node:cluster')).default;
  const { LogShipper, resolveShipTarget } = await import('../../serving/ship.ts');
  const path = await import('node:path');
  const { startServer, stopServer } = await import('../../serving/server.ts');
  const { readAipEnvironment, storageUriSource } = await import('../../serving/container.ts');
  const { PredictionLog, predictionLogDir } = await import('../../serving/logs.ts');
  const aip = readAipEnvironment();
  const storageUri = opts.modelDir ?? aip.storageUri;
  let root = io.cwd;
  let source;
  let env = opts.env;
  let port = opts.port ?? aip.httpPort;
  let policyLogs: string | undefined;
  let onErrorAnomaly;
  if (storageUri) {
    const { readOnErrorAnomaly } = await import('../../serving/checks.ts');
    onErrorAnomaly = readOnErrorAnomaly();
    env = aip.endpointId ? `vertex-${aip.endpointId}` : opts.env;
    source = await storageUriSource(storageUri, {
      deployedModelId: aip.deployedModelId,
      shadowStorageUri: aip.shadowStorageUri,
    });
  } else {
    const { findRepo } = await import('../../repo.ts');
    const { readPolicy } = await import('../../environment/policy.ts');
    const { LocalEndpointSource } = await import('../../serving/local-source.ts');
    const { defaultRemote } = await import('../../store/remote-config.ts');
    const repo = findRepo(io.cwd);
    root = repo.root;
    // The serving image (AIP_HTTP_PORT set, no promotion policies): the platform forgot the
    // model, so say that rather than asking for a promotion/<env>.yaml it never has.
    const fs = await import('node:fs');
    if (aip.httpPort !== undefined && !fs.existsSync(path.join(repo.root, 'promotion', `${env}.yaml`)))
      throw new UsageError(
        'AIP_STORAGE_URI: not set. Set it to the model directory (gs://<bucket>/<prefix> or a local path), or pass --model-dir.',
      );
    const policy = await readPolicy(repo.root, env);
    if (policy.endpoint.kind !== 'local') {
      throw new UsageError(
        `promotion/${env}.yaml: endpoint.kind is "${policy.endpoint.kind}"; Vertex AI serves it with this container. Run lockstep serve for a local environment, or set AIP_STORAGE_URI.`,
      );
    }
    port ??= policy.endpoint.port;
    policyLogs = policy.logs;
    onErrorAnomaly = policy.serving.on_error_anomaly;
    const remote = await defaultRemote(repo).catch(() => undefined);
    source = new LocalEndpointSource(repo, env, { remote, out: io });
  }
  const shipTo = resolveShipTarget({
    flag: opts.shipLogs,
    policyLogs,
    policyFile: `promotion/${env}.yaml`,
  });
  const log = new PredictionLog(predictionLogDir(path.resolve(root), env));
  const shipper = shipTo
    ? new LogShipper(log, shipTo.url, {
        where: shipTo.where,
        intervalMs: opts.shipInterval === undefined ? undefined : opts.shipInterval * 1000,
      })
    : undefined;
  const { app, url } = await startServer({
    source,
    env,
    log,
    token: opts.token ?? process.env.LOCKSTEP_SERVE_TOKEN,
    maxInFlight: opts.maxInFlight,
    onErrorAnomaly,
    predictRoute: aip.predictRoute,
    healthRoute: aip.healthRoute,
    host: opts.host ?? (aip.httpPort ? '0.0.0.0' : '127.0.0.1'),
    port: port ?? 0,
  });
  shipper?.start();
  const shutdown = async () => {
    await stopServer(app);
    await shipper?.stop();
  };
  if (cluster.isWorker) {
    // SIGTERM from the primary, or SIGINT from a terminal's Ctrl-C (sent to the whole
    // process group): the first one drains and ships the logs. Later ones are ignored, not
    // fatal: the primary decides when to stop at once, and kills this process then. Handled
    // before the primary hears this worker is ready: a SIGTERM it sends on a stop that comes
    // at once would otherwise find no handler on a loaded machine (this process descheduled
    // between the message and the handler) and kill it, reported as a worker that died.
    const stop = new Promise<void>((resolve) => {
      process.on('SIGTERM', () => resolve());
      process.on('SIGINT', () => resolve());
    });
    // The primary prints the address once for all workers.
    process.send?.({ url, predictRoute: aip.predictRoute ?? '/predict', env });
    await stop;
    await shutdown();
    return;
  }
  const models = source.models();
  io.out(`serving ${env} on ${url} (page ${url}/, predict ${url}${aip.predictRoute ?? '/predict'})`);
  io.err(
    models.length
      ? `deployed: ${models.map((m) => `${m.deployedModelId} ${m.modelVersionId.slice(0, 12)} ${m.percent}%`).join(', ')}`
      : `nothing deployed yet on ${env}: run lockstep canary reconcile --env ${env}`,
  );
  for (const m of models)
    io.err(`input checks of ${m.deployedModelId}: ${m.model.inputChecks?.source ?? 'defaults'}`);
  if (shipper) io.err(`shipping prediction logs to ${shipper.url}/ every ${shipper.intervalMs / 1000} s`);
  await stopRequested;
  await shutdown();
}

/** What a worker process told the primary once it was listening. */
interface WorkerReady {
  url: string;
  predictRoute: string;
  env: string;
}

type StopSignal = 'SIGINT' | 'SIGTERM';
const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/**
 * Forks `n` server processes running the same command line; they share one listening port (the
 * cluster module hands connections to them in turn). On SIGINT/SIGTERM (even while they start)
 * each worker drains its requests and ships its logs; a worker still running `stopMs` later is
 * killed, and so are all of them on a second signal (exit 130/143), so the primary always exits.
 */
async function superviseWorkers(n: number, stopMs: number, io: CliIO): Promise<void> {
  const cluster = (await import('node:cluster')).default;
  let signalled: StopSignal | undefined;
  let onFirst!: () => void;
  let onSecond!: () => void;
  const stopRequested = new Promise<void>((resolve) => (onFirst = resolve));
  const atOnce = new Promise<void>((resolve) => (onSecond = resolve));
  let again: StopSignal | undefined;
  const onSignal = (sig: StopSignal) => {
    if (signalled === undefined) {
      signalled = sig;
      onFirst();
    } else {
      again ??= sig;
      onSecond();
    }
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  // Before the first fork: a signal while workers start must stop them too (a primary that is
  // PID 1 in a container would otherwise ignore it).
  process.on('SIGTERM', onTerm);
  process.on('SIGINT', onInt);
  try {
    const { serverExecArgv } = await import('../../serving/young-generation.ts');
    cluster.setupPrimary({ execArgv: serverExecArgv(process.execArgv) });
    const workers = Array.from({ length: n }, () => cluster.fork());
    // Workers that said they were listening: only those have requests and logs to lose.
    const ready = new Set<number>();
    workers.forEach((w, i) => w.once('message', () => ready.add(i)));
    // Listened for at once: a worker that dies before the primary gets to wait for it is no
    // worker to wait for later.
    const exits = workers.map(
      (w) =>
        new Promise<{ code: number | null; signal: string | null }>((resolve) =>
          w.once('exit', (code: number | null, signal: string | null) => resolve({ code, signal })),
        ),
    );
    const started = await Promise.race([
      Promise.all(workers.map((w) => new Promise<WorkerReady>((resolve) => w.once('message', resolve)))),
      stopRequested.then(() => undefined),
      Promise.race(exits).then(({ code, signal }) => {
        if (signalled) return undefined;
        throw new UsageError(
          `serve: a worker exited with ${signal ?? `code ${code}`} while starting. Run without --workers to see why.`,
        );
      }),
    ]).catch(async (err: unknown) => {
      // The others would keep starting and serving, and their channels keep this process
      // alive: it would never exit. SIGTERM: one still starting ends at once, a listening one
      // drains.
      for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
      await Promise.all(exits);
      throw err;
    });
    if (started && !signalled) {
      const { url, predictRoute, env } = started[0];
      io.out(
        `serving ${env} on ${url} (page ${url}/, predict ${url}${predictRoute}) with ${n} worker processes`,
      );
      exits.forEach((e, i) =>
        e.then(({ code, signal }) => {
          if (signalled) return;
          const left = workers.filter((w) => !w.isDead()).length;
          io.err(
            `serve: worker process ${workers[i].process.pid} exited with ${signal ?? `code ${code}`}; ${left} of ${n} still serving.`,
          );
        }),
      );
      const allGone = Promise.all(exits);
      await Promise.race([stopRequested, allGone]);
      if (!signalled)
        throw new LockstepError(
          'serve: every worker process exited, nothing is serving. Run without --workers to see why.',
        );
    }
    // Every worker is told once, whatever the primary was told: SIGTERM drains and ships logs.
    const stopping = workers.map((w, i) => i).filter((i) => !workers[i]!.isDead() && ready.has(i));
    for (const w of workers) if (!w.isDead()) w.process.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(resolve, stopMs, 'late')));
    const outcome = await Promise.race([
      Promise.all(exits).then(() => 'stopped' as const),
      late,
      atOnce.then(() => 'again' as const),
    ]);
    clearTimeout(timer);
    if (outcome === 'stopped') {
      // A worker that crashed or was killed while it drained did not stop cleanly: its requests
      // in flight and last log lines may be lost, which a supervisor must hear from the exit code.
      const ends = await Promise.all(exits);
      const failed = stopping.filter((i) => ends[i]!.code !== 0 || ends[i]!.signal !== null);
      if (failed.length > 0)
        throw new LockstepError(
          `serve: ${failed
            .map(
              (i) =>
                `worker process ${workers[i]!.process.pid} exited with ${ends[i]!.signal ?? `code ${ends[i]!.code}`}`,
            )
            .join(
              ', ',
            )} while stopping after ${signalled ?? 'the stop'}; ${failed.length === 1 ? 'its' : 'their'} requests in flight and last log lines may be lost. Run without --workers to see why.`,
        );
      return;
    }
    const stuck = workers.filter((w) => !w.isDead());
    for (const w of stuck) w.process.kill('SIGKILL');
    await Promise.all(exits);
    if (outcome === 'again')
      throw new LockstepError(
        `serve: stopped at once on a second ${again}: ${stuck.length} worker process(es) killed, their requests in flight cut and their last log lines maybe not shipped.`,
        { exitCode: SIGNAL_EXIT[again!] },
      );
    throw new LockstepError(
      `serve: ${stuck.length} worker process(es) still running ${stopMs / 1000} s after ${signalled}, killed; their last log lines may not be shipped. Raise --stop-timeout if draining needs longer.`,
    );
  } finally {
    process.removeListener('SIGTERM', onTerm);
    process.removeListener('SIGINT', onInt);
  }
}
