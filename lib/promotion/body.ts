/**
 * The promotion pull request body: model hash and metrics against the model now in the target
 * environment, gate verdict, data and params lineage, and every check. Markdown, with a hidden
 * marker so tools can find it.
 */
import type { PromotionPlan } from './promote.ts';

export const PROMOTION_MARKER = '<!-- lockstep-promotion -->';

function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return '—';
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(4);
}

function delta(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined) return '—';
  const d = b - a;
  const sign = d > 0 ? '+' : '';
  return `${sign}${d.toFixed(4)}`;
}

/** Headline metrics first, per-class ones after. */
function metricKeys(a: Record<string, number>, b: Record<string, number>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.sort((x, y) => Number(x.includes('.')) - Number(y.includes('.')) || (x < y ? -1 : 1));
}

/** Renders the PR body for a plan. */
export function renderPromotionBody(plan: PromotionPlan): string {
  const lines: string[] = [PROMOTION_MARKER];
  lines.push(`## Promote \`${plan.model.hash.slice(0, 12)}\` from ${plan.from} to ${plan.env}`);
  lines.push('');
  lines.push(`- Source: \`${plan.sourceBranch}\` at \`${plan.sourceCommit.slice(0, 12)}\``);
  lines.push(
    `- Now in ${plan.env}: ${plan.baseline ? `\`${plan.baseline.model.slice(0, 12)}\` (commit \`${plan.baseline.commit.slice(0, 12)}\`)` : 'nothing yet'}`,
  );
  lines.push(`- Model: \`${plan.model.hash}\` (${plan.model.nfiles} files, ${plan.model.size} bytes)`);
  lines.push('');
  lines.push(`### Gate for ${plan.env}: ${plan.gate.passed ? '✅ passed' : '❌ failed'}`);
  lines.push('');
  for (const r of plan.gate.reasons) lines.push(`- ${r.passed ? '✅' : '❌'} ${r.detail}`);
  lines.push('');
  lines.push(`### Metrics (test split)`);
  lines.push('');
  const base = plan.baseline?.metrics ?? {};
  lines.push(`| metric | ${plan.env} now | candidate | Δ |`, '|---|---:|---:|---:|');
  for (const k of metricKeys(base, plan.metrics)) {
    lines.push(`| ${k} | ${fmt(base[k])} | ${fmt(plan.metrics[k])} | ${delta(base[k], plan.metrics[k])} |`);
  }
  lines.push('');
  lines.push('### Lineage');
  lines.push('');
  lines.push('| data | hash |', '|---|---|');
  for (const [p, h] of Object.entries(plan.lineage.data)) lines.push(`| \`${p}\` | \`${h.slice(0, 12)}\` |`);
  lines.push('');
  lines.push('<details><summary>Params and code fingerprints</summary>', '');
  lines.push('| param | value |', '|---|---|');
  for (const [k, v] of Object.entries(plan.lineage.params))
    lines.push(`| \`${k}\` | \`${JSON.stringify(v)}\` |`);
  lines.push('', '| stage | code |', '|---|---|');
  for (const [s, h] of Object.entries(plan.lineage.code)) lines.push(`| ${s} | \`${h.slice(0, 12)}\` |`);
  lines.push('', '</details>', '');
  lines.push('### Checks');
  lines.push('');
  for (const c of plan.checks) lines.push(`- ${c.ok ? '✅' : '❌'} **${c.name}**: ${c.detail}`);
  lines.push('');
  lines.push(
    `Merging this pull request deploys to **${plan.env}** (deploy workflow: repro from the remote, ${plan.env} gate, canary).`,
  );
  return lines.join('\n') + '\n';
}
