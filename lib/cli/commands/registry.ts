/**
 * `lockstep registry list | show <ref> | get <ref> --out <dir> | tag <env> | check --vertex`: the
 * model registry, read from git (every commit whose lockfile pins a model is an entry), and its
 * Vertex AI Model Registry mirror checked (and with --fix repaired) against git.
 */
import path from 'node:path';
import type { Command } from 'commander';
import type { CliIO } from '../main.ts';
import { findRepo } from '../../repo.ts';
import { parseSince } from '../time.ts';

function short(h: string): string {
  return h.slice(0, 12);
}

function keyMetrics(m: Record<string, number>): string {
  return ['accuracy', 'f1_macro', 'mcc']
    .filter((k) => m[k] !== undefined)
    .map((k) => `${k}=${m[k].toFixed(3)}`)
    .join(' ');
}

async function parseLimit(value: string): Promise<number> {
  // 0 would list nothing and then say no commit pins a model: not what anyone asks for.
  if (/^\d+$/.test(value) && Number(value) >= 1) return Number(value);
  const { UsageError } = await import('../../errors.ts');
  throw new UsageError(`--limit: expected a whole number of at least 1 "${value}". Pass e.g. --limit 20.`);
}

export function register(program: Command, io: CliIO): void {
  const registry = program
    .command('registry')
    .description('the model registry: every commit whose lockfile pins a model');

  registry
    .command('list')
    .description('list registry entries: commit, date, model hash, key metrics, gate verdict, environments')
    .option('--json', 'print JSON')
    .option('-n, --limit <n>', 'at most n entries (the newest)')
    .option('--since <date>', 'only commits newer than <date>: 2026-01-31, or "2 weeks ago"')
    .action(async (opts: { json?: boolean; limit?: string; since?: string }) => {
      const [{ listRegistry }, { renderTable }] = await Promise.all([
        import('../../registry/registry.ts'),
        import('../../table.ts'),
      ]);
      const repo = findRepo(io.cwd);
      const since = opts.since === undefined ? undefined : parseSince('--since', opts.since).toISOString();
      const entries = await listRegistry(repo.root, {
        limit: opts.limit === undefined ? undefined : await parseLimit(opts.limit),
        since,
      });
      if (opts.json) return io.out(JSON.stringify(entries, null, 2));
      if (entries.length === 0 && since)
        return io.out(`no registry entries since ${since} (--since ${opts.since}). Pass an earlier --since.`);
      if (entries.length === 0)
        return io.out(
          'no registry entries yet (no commit pins a model). Run lockstep repro and commit the lockfile.',
        );
      io.out(
        renderTable(
          ['commit', 'date', 'model', 'metrics', 'gate', 'environments'],
          entries.map((e) => [
            e.commit.slice(0, 8),
            e.date.slice(0, 16).replace('T', ' '),
            short(e.model.hash),
            keyMetrics(e.metrics),
            e.gate,
            e.environments.map((p) => (p.state === 'current' ? p.env : `(${p.env})`)).join(' '),
          ]),
        ),
      );
    });

  registry
    .command('show <ref>')
    .description('show the entry at a commit, branch, tag or environment (dev, staging, prod)')
    .option('--json', 'print JSON')
    .option('--history', 'also list the environments that deployed the model before (walks their history)')
    .action(async (ref: string, opts: { json?: boolean; history?: boolean }) => {
      const [{ showRegistry }, { lineageOf }, { servingModel }, { readDeployments }, { ENVIRONMENTS }] =
        await Promise.all([
          import('../../registry/registry.ts'),
          import('../../registry/lineage.ts'),
          import('../../canary/serving.ts'),
          import('../../promotion/records.ts'),
          import('../../environment/policy.ts'),
        ]);
      const repo = findRepo(io.cwd);
      const e = await showRegistry(repo.root, ref, { history: opts.history });
      const lineage = lineageOf(e.commit, e.lockfile);
      // What serves each environment, and every recorded event of this model (canary steps,
      // holds, completions, rollbacks, with their reasons).
      const serving: Record<string, string> = {};
      const events = [];
      for (const env of ENVIRONMENTS) {
        const s = await servingModel(repo, env).catch(() => undefined);
        if (s) serving[env] = s.model;
        for (const r of await readDeployments(repo, env)) if (r.model === e.model.hash) events.push(r);
      }
      events.sort((a, b) => ((a.at ?? '') < (b.at ?? '') ? -1 : 1));
      if (opts.json) {
        const { lockfile: _lf, ...rest } = e;
        return io.out(JSON.stringify({ ...rest, lineage, serving, events }, null, 2));
      }
      io.out(`ref:          ${ref} → ${e.commit}`);
      io.out(`date:         ${e.date}  ${e.author}: ${e.subject}`);
      io.out(`model:        ${e.model.hash} (${e.model.nfiles} files, ${e.model.size} bytes)`);
      io.out(`gate:         ${e.gate}`);
      const where = e.environments.map((p) => `${p.env} (${p.state})`).join(', ');
      io.out(
        e.history
          ? e.shallow
            ? `environments: ${where || 'none now'}; earlier deploys: only those after the shallow clone's boundary were read (git fetch --unshallow for all)`
            : `environments: ${where || 'none, now or before'}`
          : `environments: ${where || 'none now'}; earlier deploys: --history, or lockstep history <env>`,
      );
      for (const problem of e.problems) io.out(`unreadable:   ${problem}`);
      const servingHere = Object.entries(serving).filter(([, m]) => m === e.model.hash);
      io.out(
        `serving:      ${servingHere.map(([env]) => env).join(', ') || 'nowhere'}${
          Object.keys(serving).length
            ? ` (${Object.entries(serving)
                .map(([env, m]) => `${env}: ${short(m)}`)
                .join(', ')})`
            : ''
        }`,
      );
      if (events.length > 0) {
        io.out('events:');
        for (const r of events)
          io.out(
            `  ${r.at}  ${r.env.padEnd(8)} ${r.status.padEnd(18)} ${r.source}${r.percent !== undefined ? ` ${r.percent}%` : ''}${r.detail ? ': ' + r.detail : ''}`,
          );
      }
      io.out('metrics:');
      const { isSliceOrIntervalKey } = await import('../../slices/shape.ts');
      const detail = Object.keys(e.metrics).filter(isSliceOrIntervalKey).length;
      for (const [k, v] of Object.entries(e.metrics))
        if (!isSliceOrIntervalKey(k)) io.out(`  ${k.padEnd(24)} ${v.toFixed(4)}`);
      if (detail > 0)
        io.out(
          `  (${detail} slice and interval keys: --json, or lockstep metrics show ${e.commit.slice(0, 12)} --all)`,
        );
      io.out('data:');
      for (const [p, h] of Object.entries(lineage.data)) io.out(`  ${p.padEnd(30)} ${short(h)}`);
    });

  registry
    .command('get <ref>')
    .description('fetch the model pinned at <ref> into --out, verifying every object')
    .requiredOption('-o, --out <dir>', 'destination directory')
    .option('-r, --remote <url>', 'remote to fetch missing objects from (default: the configured one)')
    .option('--json', 'print JSON')
    .action(async (ref: string, opts: { out: string; remote?: string; json?: boolean }) => {
      const { modelAtRef } = await import('../../registry/registry.ts');
      const { fetchArtifact } = await import('../../registry/fetch.ts');
      const { defaultRemote } = await import('../../store/remote-config.ts');
      const { openRemote } = await import('../../store/open-remote.ts');
      const repo = findRepo(io.cwd);
      // One lockfile: `get` needs the model, not where it ran.
      const e = await modelAtRef(repo.root, ref);
      const remote = opts.remote ? await openRemote(opts.remote) : await defaultRemote(repo);
      const dest = path.resolve(io.cwd, opts.out);
      const res = await fetchArtifact(repo, e.model, dest, { remote });
      const summary = { ref, commit: e.commit, model: e.model.hash, out: dest, ...res };
      if (opts.json) return io.out(JSON.stringify(summary, null, 2));
      io.out(
        `model ${short(e.model.hash)} from ${e.commit.slice(0, 8)}: ${res.files} files, ${res.bytes} bytes verified → ${dest}`,
      );
    });

  registry
    .command('check')
    .description('compare git with the Vertex AI Model Registry (aliases, versions, evaluations)')
    .option('--vertex', 'check the Vertex AI Model Registry of every environment served there')
    .option('--fix', 'repair every drift from git: upload, import evaluations, move aliases')
    .option('-e, --env <env>', 'only this environment')
    .option('--json', 'print JSON')
    .action(async (opts: { vertex?: boolean; fix?: boolean; env?: string; json?: boolean }) => {
      const { UsageError, RefusedError } = await import('../../errors.ts');
      if (!opts.vertex)
        throw new UsageError(
          'registry check: no registry named. Pass --vertex (git is the only other registry).',
        );
      const { checkVertexRegistry } = await import('../../endpoints/vertex-mirror.ts');
      const { defaultRemote } = await import('../../store/remote-config.ts');
      const repo = findRepo(io.cwd);
      const remote = await defaultRemote(repo).catch(() => undefined);
      const res = await checkVertexRegistry(repo, {
        fix: opts.fix,
        envs: opts.env ? [opts.env] : undefined,
        remote,
        out: io,
      });
      if (opts.json) io.out(JSON.stringify(res, null, 2));
      else {
        for (const line of res.drift) io.out(line);
        for (const line of res.fixed) io.out(`fixed ${line}`);
        if (res.drift.length === 0) io.out('the Vertex AI Model Registry agrees with git');
      }
      if (res.drift.length > 0 && !opts.fix)
        throw new RefusedError(
          `registry check: ${res.drift.length} drift(s) between git and Vertex AI. Run lockstep registry check --vertex --fix.`,
        );
    });

  registry
    .command('tag <env>')
    .description(
      "write GTO tags (<name>@v<semver>, <name>#<env>#<n>) for the commit at the environment's head",
    )
    .option('--json', 'print JSON')
    .action(async (env: string, opts: { json?: boolean }) => {
      const { resolveRef } = await import('../../environment/refs.ts');
      const { modelAtRef } = await import('../../registry/registry.ts');
      const { writeGtoTags } = await import('../../registry/gto.ts');
      const repo = findRepo(io.cwd);
      const { commit } = await resolveRef(repo.root, env);
      // Tag the commit that produced the model (the promoted commit), not the merge.
      const e = await modelAtRef(repo.root, commit);
      const tags = await writeGtoTags(repo.root, e.commit, env);
      if (opts.json) return io.out(JSON.stringify(tags, null, 2));
      io.out(`${tags.registered ? 'registered ' + tags.versionTag + ', ' : ''}assigned ${tags.stageTag}`);
    });
}
