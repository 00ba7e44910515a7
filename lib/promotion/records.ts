/**
 * Local deployment records: one JSON line per event in `.lockstep/deployments/<env>.jsonl`,
 * the embedded counterpart of GitHub's Deployments API (which `history` also reads on GitHub).
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Repo } from '../repo.ts';

export interface DeploymentRecord {
  env: string;
  commit: string;
  model: string;
  version?: string;
  /** What recorded it: `promote --local`, `rollback --local`, `deploy`, `canary`. */
  source: string;
  /**
   * `promoted`, `in_progress`, `success`, `failure`, `inactive`, `rolled_back`; from the canary:
   * `canary_started`, `canary_step` (advanced), `canary_hold`, `canary_rolled_back`.
   */
  status: string;
  at?: string;
  /** Canary step (1-based) the record is about. */
  step?: number;
  /** Candidate's traffic percent after the event. */
  percent?: number;
  /** Why: the canary's or the rollback's reason. */
  detail?: string;
  /** Serving container image, by digest (Vertex AI endpoints; the local endpoint has none). */
  image?: string;
}

function fileOf(repo: Repo, env: string): string {
  return path.join(repo.stateDir, 'deployments', `${env}.jsonl`);
}

/** Appends one record (a single `appendFile` of one line: a crash leaves whole lines). */
export async function recordDeployment(repo: Repo, record: DeploymentRecord): Promise<void> {
  const file = fileOf(repo, record.env);
  await mkdir(path.dirname(file), { recursive: true });
  const line = JSON.stringify({ at: new Date().toISOString(), ...record }) + '\n';
  await appendFile(file, line);
}

/** Every record of `env`, oldest first; a torn last line is ignored. */
export async function readDeployments(repo: Repo, env: string): Promise<DeploymentRecord[]> {
  let text: string;
  try {
    text = await readFile(fileOf(repo, env), 'utf8');
  } catch {
    return [];
  }
  const out: DeploymentRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as DeploymentRecord);
    } catch {
      // A partially written final line from a crash: skip it.
    }
  }
  return out;
}
