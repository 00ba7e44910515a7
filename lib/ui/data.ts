/**
 * Everything the dashboard shows, read once per snapshot from git, the local records under
 * `.lockstep/` and the monitoring reports: nothing is written, no network is called.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Repo } from '../repo.ts';
import type { Lockfile } from '../types.ts';
import { withRegistrySession } from '../registry/environments.ts';
import { listRegistry, type RegistryEntry } from '../registry/registry.ts';
import { lineageOf, type Lineage } from '../registry/lineage.ts';
import { environmentHistory, type HistoryEntry } from '../promotion/history.ts';
import { readDeployments, type DeploymentRecord } from '../promotion/records.ts';
import { ENVIRONMENTS, readPolicy, type Policy } from '../environment/policy.ts';
import { endpointStatePath, readEndpointState, type EndpointState } from '../serving/endpoint-state.ts';
import { collectRows, type ExpRow } from '../experiments/show.ts';
import { readOrigins } from '../experiments/origins.ts';
import { readCommittedLockfile } from '../lockfile.ts';
import type { MonitorReport } from '../monitoring/monitor.ts';
import { stageReasons, type StageReason } from './reasons.ts';
import { toOneLine } from '../errors.ts';

export interface EnvironmentView {
  env: string;
  branch: string;
  policy?: Policy;
  /** Why the policy or history could not be read (one line). */
  problem?: string;
  /** The local endpoint's state; undefined for a Vertex AI endpoint. */
  endpoint?: EndpointState;
  changes: HistoryEntry[];
  records: DeploymentRecord[];
}

export interface LineageView extends Lineage {
  subject: string;
  date: string;
  /** Stage name → why it (re)ran at this commit, against the first parent's lockfile. */
  reasons: Record<string, StageReason>;
  /** Stage name → its outs (path and hash). */
  outs: Record<string, { path: string; hash: string }[]>;
}

export interface MonitoringView {
  env: string;
  /** The report file read, relative to the repository. */
  file: string;
  report?: MonitorReport;
  problem?: string;
}

export interface Dashboard {
  generatedAt: string;
  registry: RegistryEntry[];
  environments: EnvironmentView[];
  experiments: ExpRow[];
  monitoring: MonitoringView[];
}

async function environmentView(repo: Repo, env: string): Promise<EnvironmentView> {
  const records = await readDeployments(repo, env);
  let policy: Policy | undefined;
  try {
    policy = await readPolicy(repo.root, env);
  } catch (err) {
    return { env, branch: env, problem: toOneLine(err), changes: [], records };
  }
  const endpoint =
    policy.endpoint.kind === 'local' ? readEndpointState(endpointStatePath(repo.root, env), env) : undefined;
  try {
    const history = await environmentHistory(repo, env);
    return { env, branch: history.branch, policy, endpoint, changes: history.changes, records };
  } catch (err) {
    return { env, branch: policy.branch, policy, endpoint, problem: toOneLine(err), changes: [], records };
  }
}

/**
 * The lineage of each of `entries`, with the reasons its stages ran (against the first parent's
 * lockfile), read through one git reader.
 */
export async function readLineages(
  repo: Repo,
  entries: Pick<RegistryEntry, 'commit' | 'subject' | 'date'>[],
): Promise<Map<string, LineageView>> {
  return withRegistrySession(repo.root, async ({ reader }) => {
    const out = new Map<string, LineageView>();
    const parents = new Map<string, Lockfile | undefined>();
    for (const e of entries) {
      const committed = await readCommittedLockfile(reader, e.commit);
      if (!committed) continue;
      const parent = await reader.revParse(`${e.commit}^1`);
      if (parent && !parents.has(parent))
        parents.set(parent, (await readCommittedLockfile(reader, parent).catch(() => undefined))?.lockfile);
      const before = parent ? parents.get(parent) : undefined;
      const outs: LineageView['outs'] = {};
      for (const [name, st] of Object.entries(committed.lockfile.stages))
        outs[name] = st.outs.map((o) => ({ path: o.path, hash: o.hash }));
      out.set(e.commit, {
        ...lineageOf(e.commit, committed.lockfile),
        subject: e.subject,
        date: e.date,
        reasons: stageReasons(committed.lockfile, before),
        outs,
      });
    }
    return out;
  });
}

function monitoringView(repo: Repo, env: string): MonitoringView {
  const file = path.join('out', 'monitor', env, 'report.json');
  const abs = path.join(repo.root, file);
  if (!existsSync(abs)) return { env, file };
  try {
    const report = JSON.parse(readFileSync(abs, 'utf8')) as MonitorReport;
    if (report?.env !== env || !Array.isArray(report.alerts) || !Array.isArray(report.features))
      return {
        env,
        file,
        problem: `${file}: not a monitoring report of ${env}. Run lockstep monitor --env ${env}.`,
      };
    return { env, file, report };
  } catch (err) {
    return { env, file, problem: `${file}: ${toOneLine(err)}. Run lockstep monitor --env ${env}.` };
  }
}

/** Reads the whole dashboard for `repo`. */
export async function readDashboard(repo: Repo): Promise<Dashboard> {
  const [registry, environments, experiments] = await Promise.all([
    listRegistry(repo.root),
    Promise.all(ENVIRONMENTS.map((env) => environmentView(repo, env))),
    collectRows(repo.root, {
      allCommits: true,
      origins: readOrigins(repo),
      cacheFile: path.join(repo.stateDir, 'exp-show-cache.json'),
    }),
  ]);
  return {
    generatedAt: new Date().toISOString(),
    registry,
    environments,
    experiments,
    monitoring: ENVIRONMENTS.map((env) => monitoringView(repo, env)),
  };
}
