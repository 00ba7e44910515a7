/**
 * The report near GitHub's comment limit (65,536 characters): it is cut between parts, never
 * inside a Mermaid fence or a <details>, keeps its marker (so the next run edits the same
 * comment) and the Experiments section's end marker, whatever grows.
 */
import { describe, expect, it } from 'vitest';
import { REPORT_MARKER, renderReport, type Comparison } from '../../lib/report/render.ts';
import { findSection } from '../../lib/report/sections.ts';
import { mermaidBlocks } from '../../lib/report/charts.ts';

const GITHUB_LIMIT = 65_536;

const side = (label: string) => ({
  label,
  metrics: { f1_macro: 0.5, accuracy: 0.6, 'f1.angry': 0.4, 'f1.sad': 0.7 },
  history: {
    epochs: [1, 2, 3].map((epoch) => ({
      epoch,
      loss: 1 / epoch,
      acc: 0.2 * epoch,
      val_loss: 1 / epoch,
      val_acc: 0.2 * epoch,
    })),
  },
});
const comparison: Comparison = { base: side('main'), head: side('head') };

function balanced(body: string): void {
  expect(body.length).toBeLessThan(GITHUB_LIMIT);
  expect(body.startsWith(REPORT_MARKER)).toBe(true);
  expect((body.match(/^```/gm) ?? []).length % 2).toBe(0);
  expect((body.match(/<details>/g) ?? []).length).toBe((body.match(/<\/details>/g) ?? []).length);
}

describe('report render limits', () => {
  it('report render limits: a cut never lands inside a chart or a fold', () => {
    const free = renderReport({ comparison, notes: [] }).indexOf('```mermaid');
    let cut = 0;
    // Note lengths that put the 60,000-character cut everywhere across the charts.
    for (let pad = 60_000 - free - 200; pad < 60_000 - free + 2_000; pad += 97) {
      const body = renderReport({ comparison, notes: ['n'.repeat(pad)], metricsDiff: 'm'.repeat(3_000) });
      balanced(body);
      if (body.includes('Report truncated')) cut++;
      for (const block of mermaidBlocks(body)) expect(block.trimEnd().endsWith(']')).toBe(true);
    }
    expect(cut).toBeGreaterThan(0);
  });

  it('report render limits: a huge Experiments section keeps the marker and its end marker', () => {
    const rows = Array.from({ length: 3_000 }, (_, i) => `| ${i} | exp-${i} | lr=0.${i} | 0.5 | ok |`);
    const body = renderReport({ comparison, experiments: `### Experiments\n\n${rows.join('\n')}` });
    balanced(body);
    const section = findSection(body, 'experiments');
    expect(section).toBeDefined();
    expect(section).toMatch(/more lines left off/);
    expect(body).toContain('## lockstep report');
  });
});
