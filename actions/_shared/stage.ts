/**
 * The body every stage action shares: read inputs, plan and run `lockstep repro <stage>` (so the
 * runner's cache, lockfile and skip reasons apply exactly as on a laptop), set outputs, write the
 * job summary, fail the step when the run failed.
 */
import * as core from '@actions/core';
import { escapeCell } from '../../lib/report/render.ts';
import type { StageLine } from '../../lib/report/render.ts';
import { lastError, parseJsonOutput, runLockstep } from './cli.ts';
import { workingDirectory } from './inputs.ts';
import type { StageOutcome } from './results.ts';

export interface PipelineActionOptions {
  /** Stages to bring up to date (their upstream stages run or are restored first); empty = all. */
  targets: string[];
  /** Title of the job summary. */
  title: string;
  /** Reads the stage's outputs after the run (annotations, metrics, verdict). */
  outcome?: (cwd: string) => Promise<StageOutcome>;
  /**
   * Name of a boolean input; when it is false, only restoring and skipping are allowed: if the plan would run any stage, the
   * action fails before running anything (environments that must not retrain). Default true.
   */
  allowRunInput?: string;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'boolean' ? String(v) : undefined;
}

/**
 * Turns the runner's `--json` output (a list of stages, or an object with `stages`/`plan`) into
 * summary lines, tolerating the field names `stage`/`name`, `status`/`action`/`run`, `reason`/`reasons`.
 */
export function toStageLines(json: unknown): StageLine[] {
  const obj = json as Record<string, unknown> | undefined;
  const list = Array.isArray(json)
    ? json
    : Array.isArray(obj?.stages)
      ? obj.stages
      : Array.isArray(obj?.plan)
        ? obj.plan
        : obj?.stages && typeof obj.stages === 'object'
          ? Object.entries(obj.stages as Record<string, object>).map(([name, v]) => ({ name, ...v }))
          : [];
  return (list as Record<string, unknown>[])
    .filter((s) => s && typeof s === 'object')
    .map((s) => {
      const stage = str(s.stage) ?? str(s.name) ?? '?';
      const run = s.run ?? s.willRun ?? s.changed;
      const status =
        str(s.status) ??
        str(s.action) ??
        str(s.outcome) ??
        (run === true ? 'run' : run === false ? 'skip' : '');
      const reasons = Array.isArray(s.reasons) ? (s.reasons as unknown[]).map(String).join('; ') : undefined;
      return { stage, status, reason: str(s.reason) ?? reasons };
    });
}

/** True when a planned stage would execute (not skip or restore). */
export function isRunStatus(line: StageLine): boolean {
  return /^(run|will run|running|ran)$/i.test(line.status);
}

/** A Markdown table of stage lines. */
export function stagesTable(lines: StageLine[]): string {
  return [
    '| stage | status | reason |',
    '| --- | --- | --- |',
    ...lines.map(
      (l) => `| ${escapeCell(l.stage)} | ${escapeCell(l.status)} | ${escapeCell(l.reason ?? '')} |`,
    ),
  ].join('\n');
}

/** Runs the action: never throws; failures go through `core.setFailed`. */
export async function runPipelineAction(options: PipelineActionOptions): Promise<void> {
  try {
    const cwd = workingDirectory();
    const force = core.getBooleanInput('force');
    const pipelineModule = core.getInput('pipeline');
    const allowRun = options.allowRunInput ? core.getBooleanInput(options.allowRunInput) : true;
    const args = [
      'repro',
      ...options.targets,
      ...(force ? ['--force'] : []),
      ...(pipelineModule ? ['--pipeline', pipelineModule] : []),
    ];

    // Plan first so the summary says why each stage runs or is skipped, even if the run fails.
    const plan = await core.group('Plan', () => runLockstep([...args, '--dry', '--json'], { cwd }));
    let lines = plan.code === 0 ? toStageLines(parseJsonOutput(plan)) : [];
    if (!allowRun) {
      if (plan.code !== 0) throw new Error(`${options.title}: planning failed: ${lastError(plan)}`);
      const wouldRun = lines.filter(isRunStatus);
      if (wouldRun.length) {
        core.setOutput('stages', JSON.stringify(lines));
        core.setOutput('ok', 'false');
        await core.summary
          .addRaw(`## lockstep: ${options.title} ❌ would retrain\n\n${stagesTable(lines)}\n`)
          .write();
        const why = wouldRun.map((l) => `${l.stage} would run (${l.reason ?? 'no reason'})`).join(', ');
        core.setFailed(
          `${options.title}: this environment does not allow retraining, but ${why}. ` +
            'Promote a commit whose artifacts are on the remote (lockstep push on the source branch).',
        );
        return;
      }
    }
    const result = await core.group('Run', () =>
      runLockstep(plan.code === 2 ? args : [...args, '--json'], { cwd }),
    );
    const ran = toStageLines(parseJsonOutput(result));
    if (ran.length) lines = ran;

    const outcome = options.outcome ? await options.outcome(cwd) : { markdown: [], outputs: {} };
    const failed = result.code !== 0;
    core.setOutput('stages', JSON.stringify(lines));
    core.setOutput('ok', String(!failed));
    for (const [k, v] of Object.entries(outcome.outputs)) core.setOutput(k, v);

    const summary = [`## lockstep: ${options.title} ${failed ? '❌ failed' : '✅'}`];
    if (failed) summary.push(`> ${lastError(result)}`);
    summary.push(
      lines.length ? stagesTable(lines) : '_The runner reported no stage plan._',
      ...outcome.markdown,
    );
    await core.summary.addRaw(summary.join('\n\n') + '\n').write();

    if (failed) core.setFailed(`${options.title}: ${lastError(result)}`);
  } catch (err) {
    core.setFailed(err instanceof Error ? err.message : String(err));
  }
}
