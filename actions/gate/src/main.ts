/**
 * The `gate` stage as an action. Without `env`: `lockstep repro gate` (thresholds and baseline
 * from params.yaml), outputs and a job summary. With `env`: the deploy-time gate, the evaluate
 * metrics checked against that environment's thresholds (promotion/<env>.yaml) and the model it
 * ran before (the lockfile at `baseline-rev`, else at its branch head). The verdict goes to
 * out/gate/verdict.<env>.json, the summary and the outputs; a failing gate fails the step.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as core from '@actions/core';
import { resolveRev } from '../../../lib/git.ts';
import { loadParams } from '../../../lib/params.ts';
import { findRepo } from '../../../lib/repo.ts';
import { renderVerdict } from '../../../lib/report/render.ts';
import {
  baselineAt,
  evaluateGate,
  resolveBaseline,
  resolveThresholds,
  withBaselineSlices,
  type Baseline,
} from '../../../stages/gate/index.ts';
import { PATHS } from '../../../lib/paths.ts';
import { flattenMetrics } from '../../../lib/pipeline/metrics.ts';
import { runPipelineAction } from '../../_shared/stage.ts';
import { gateOutcome } from '../../_shared/results.ts';
import { envInput, workingDirectory } from '../../_shared/inputs.ts';

/**
 * The deployed model's metrics: the evaluate metrics in the lockfile at `rev` (on a push, the
 * branch head before it: `github.event.before`); an all-zero rev (a new branch) has none.
 * Without `rev`, the environment branch head (stages/gate resolveBaseline).
 */
async function baselineFor(root: string, env: string, rev: string): Promise<Baseline | null> {
  if (!rev) return resolveBaseline(root, env);
  if (/^0+$/.test(rev)) return null;
  return baselineAt(root, env, await resolveRev(root, rev));
}

async function gateForEnvironment(): Promise<void> {
  try {
    const env = envInput('env');
    const repo = findRepo(workingDirectory());
    const params = loadParams(repo);
    const metricsFile = path.join(repo.root, PATHS.eval, 'metrics.json');
    let metrics: Record<string, number>;
    try {
      metrics = flattenMetrics(JSON.parse(await readFile(metricsFile, 'utf8')));
    } catch {
      throw new Error(
        `${PATHS.eval}/metrics.json: missing or unreadable. Restore or run the pipeline (lockstep repro) before the gate.`,
      );
    }
    const { thresholds, source } = await resolveThresholds(repo.root, env, params.gate);
    const baseline = await withBaselineSlices(
      repo.root,
      await baselineFor(repo.root, env, core.getInput('baseline-rev')),
      thresholds,
    );
    const verdict = evaluateGate({ metrics, thresholds, baseline });
    await mkdir(path.join(repo.root, PATHS.gate), { recursive: true });
    await writeFile(
      path.join(repo.root, PATHS.gate, `verdict.${env}.json`),
      JSON.stringify(verdict, null, 2) + '\n',
    );
    core.setOutput('ok', String(verdict.passed));
    core.setOutput('passed', String(verdict.passed));
    core.setOutput('verdict', JSON.stringify(verdict));
    core.setOutput('stages', '[]');
    await core.summary
      .addRaw(
        `## lockstep: gate for ${env} ${verdict.passed ? '✅' : '❌'}\n\nThresholds from ${source}.\n\n${renderVerdict(verdict)}\n`,
      )
      .write();
    if (!verdict.passed) {
      const failed = verdict.reasons.filter((r) => !r.passed).map((r) => `${r.metric}: ${r.detail}`);
      core.setFailed(`gate for ${env}: ${failed.join('; ')}`);
    }
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}

export function run(): Promise<void> {
  if (core.getInput('env')) return gateForEnvironment();
  return runPipelineAction({ targets: ['gate'], title: 'gate', outcome: gateOutcome });
}
