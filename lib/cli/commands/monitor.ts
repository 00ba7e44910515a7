/**
 * `lockstep monitor --env <env>`: skew and drift of the served model from its prediction logs;
 * JSON and Markdown reports and a Vega-Lite plot; with --github, ONE issue per environment and
 * an automatic retrain dispatch when promotion/<env>.yaml allows it.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { UsageError } from '../../errors.ts';
import { parseIsoTime, parseSince } from '../time.ts';

const UNIT_HOURS: Record<string, number> = { s: 1 / 3600, m: 1 / 60, h: 1, d: 24, w: 168 };

/** The longest window: ten years, far past any log's retention (and any Date's range). */
const MAX_WINDOW_HOURS = 10 * 8766;

/** `30m`, `6h`, `1.5d`, `2w` → hours: at least one second, at most ten years. */
export function parseWindow(value: string): number {
  const m = /^(\d+(?:\.\d+)?)([smhdw])$/.exec(value.trim());
  const hours = m ? Number(m[1]) * UNIT_HOURS[m[2]] : NaN;
  if (!(hours * 3600 >= 1) || hours > MAX_WINDOW_HOURS)
    throw new UsageError(
      `--window: not a duration from 1s to 10 years "${value}". Pass a number and a unit: 30m, 6h, 2d or 1w.`,
    );
  return hours;
}

/** An ISO time → Date, strictly (see lib/cli/time.ts). */
function parseTime(flag: string, value: string): Date {
  const d = parseIsoTime(value);
  if (!d)
    throw new UsageError(`${flag}: not a time "${value}". Pass an ISO time, e.g. 2026-01-31T12:00:00Z.`);
  return d;
}

export function register(program: Command, io: CliIO): void {
  program
    .command('monitor')
    .description('skew and drift of the served model from its prediction logs (TFDV distances)')
    .requiredOption('-e, --env <env>', 'environment')
    .option(
      '--logs <dir|gs://bucket/prefix|bq://project.dataset.table>',
      "prediction logs: a directory, a gs:// prefix or a BigQuery table (default: the policy's logs or endpoint.request_logging, else .lockstep/logs/<env>)",
    )
    .option('--out <dir>', 'report directory (default out/monitor/<env>)')
    .option(
      '--window <duration>',
      "length of the recent window, e.g. 30m, 6h, 2d (default params.yaml's monitor.window_hours)",
      parseWindow,
    )
    .option(
      '--since <time>',
      'start of the recent window (ISO time, or "2 hours ago"); the window ends --window later, or now',
    )
    .option('--now <iso>', 'end of the recent window (default: now)')
    .option('--github', 'open or update the monitoring issue and dispatch retraining when allowed')
    .option('--fail-on-alert', 'exit 1 when an alert is raised')
    .option('--json', 'print the JSON report')
    .action(
      async (opts: {
        env: string;
        logs?: string;
        out?: string;
        now?: string;
        window?: number;
        since?: string;
        github?: boolean;
        failOnAlert?: boolean;
        json?: boolean;
      }) => {
        const { loadParams } = await import('../../params.ts');
        const { predictionLogDir } = await import('../../serving/logs.ts');
        const { readLogs, policyLogSource } = await import('../../monitoring/logs.ts');
        const { readPolicy: readEnvPolicy } = await import('../../environment/policy.ts');
        const { computeMonitorReport, renderMonitorMarkdown, monitorPlotSpec } =
          await import('../../monitoring/monitor.ts');
        const { loadReference } = await import('../../monitoring/reference.ts');
        const { defaultRemote } = await import('../../store/remote-config.ts');
        const { LockstepError } = await import('../../errors.ts');
        // The flags first: a malformed one is a usage error whatever the repository holds.
        // --since fixes the window's start: it ends --window later (or at --now / now).
        const clock = opts.now ? parseTime('--now', opts.now) : new Date();
        const since = opts.since ? parseSince('--since', opts.since, clock.getTime()) : undefined;
        if (since && since.getTime() >= clock.getTime())
          throw new UsageError(
            `--since: "${opts.since}" is not before the window's end ${clock.toISOString()}. Pass an earlier time.`,
          );
        const repo = findRepo(io.cwd);
        const params = loadParams(repo);
        let now = clock;
        let windowHours = opts.window ?? params.monitor.window_hours;
        if (since && opts.window !== undefined) now = new Date(since.getTime() + opts.window * 3600_000);
        else if (since) windowHours = (now.getTime() - since.getTime()) / 3600_000;
        const { reference, source } = await loadReference(repo, opts.env, {
          remote: await defaultRemote(repo),
        });
        const envPolicy = await readEnvPolicy(repo.root, opts.env).catch(() => undefined);
        const remoteLogs = policyLogSource(envPolicy, opts.env);
        const logSource = opts.logs ?? envPolicy?.logs ?? remoteLogs?.source;
        const logsDir = logSource
          ? /^(gs|bq):\/\//.test(logSource)
            ? logSource
            : path.resolve(io.cwd, logSource)
          : predictionLogDir(repo.root, opts.env);
        // A BigQuery table is queried for the two windows only (the recent and the previous).
        const entries = await readLogs(logsDir, {
          env: opts.env,
          where: opts.logs ? '--logs' : remoteLogs?.where,
          ...(logsDir.startsWith('bq://')
            ? { since: new Date(now.getTime() - 2 * windowHours * 3600_000) }
            : {}),
        });
        const report = computeMonitorReport(
          opts.env,
          entries,
          reference,
          {
            ...params.monitor,
            window_hours: windowHours,
            max_anomaly_rate: envPolicy?.serving.max_anomaly_rate,
            anomaly_rates: envPolicy?.serving.anomaly_rates,
          },
          now,
        );
        const outDir = path.resolve(io.cwd, opts.out ?? path.join(repo.root, 'out', 'monitor', opts.env));
        await mkdir(outDir, { recursive: true });
        const markdown = renderMonitorMarkdown(report);
        await writeFile(path.join(outDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
        await writeFile(path.join(outDir, 'report.md'), markdown);
        if (report.features.length > 0) {
          // Training vs serving distributions of the most skewed features, as .vl.json, .svg, .png.
          const { writePlot } = await import('../../plots/render.ts');
          await writePlot(outDir, 'distributions', monitorPlotSpec(report));
        }
        if (opts.json) io.out(JSON.stringify(report, null, 2));
        else {
          io.out(
            `monitor ${opts.env}: ${report.status} (${report.volume.recent} predictions in the window from ${logsDir}; reference: ${source})`,
          );
          for (const a of report.alerts) io.out(`  ${a}`);
          for (const a of report.anomalies.kinds)
            io.out(
              `  anomaly ${a.kind} (${a.severity}): ${a.count}/${report.anomalies.requests} requests (${(a.rate * 100).toFixed(1)}%), ${a.rejected} rejected`,
            );
          io.out(
            `reports: ${path.relative(io.cwd, outDir) || '.'}/report.{json,md}, distributions.{vl.json,svg,png}`,
          );
        }
        if (opts.github && report.status === 'alert') {
          const { githubFromEnv } = await import('../github.ts');
          const { upsertMonitorIssue, dispatchRetrain } = await import('../../monitoring/github.ts');
          const { readPolicy } = await import('../../environment/policy.ts');
          const gh = (await githubFromEnv(repo.root, true))!;
          const issue = await upsertMonitorIssue(
            gh.client,
            gh.slug,
            opts.env,
            `Monitoring alert: ${opts.env}`,
            markdown,
          );
          io.err(`${issue.created ? 'opened' : 'updated'} issue #${issue.number}`);
          const policy = await readPolicy(repo.root, opts.env);
          if (policy.auto_retrain) {
            await dispatchRetrain(gh.client, gh.slug, {
              ref: process.env.GITHUB_REF_NAME || 'main',
              reason: `monitor ${opts.env}: ${report.alerts.slice(0, 3).join('; ')}`,
            });
            io.err('dispatched retrain.yml');
          }
        }
        if (opts.failOnAlert && report.status === 'alert') {
          throw new LockstepError(
            `monitor ${opts.env}: ${report.alerts.length} alert(s): ${report.alerts[0]}. See ${path.join(outDir, 'report.md')}.`,
          );
        }
      },
    );
}
