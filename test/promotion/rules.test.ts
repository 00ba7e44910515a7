import { describe, expect, it } from 'vitest';
import type { Check } from '../../lib/promotion/checks.ts';
import {
  PROMOTION_RULES,
  promotionOrderRule,
  recordedGateRule,
  runPromotionRules,
  targetGateRule,
  type PromotionContext,
  type PromotionRule,
} from '../../lib/promotion/rules.ts';

/** A context for the rules that read only what the plan gathered (no repository touched). */
function context(over: Partial<PromotionContext> = {}): PromotionContext {
  return {
    repo: { root: '/nonexistent' } as PromotionContext['repo'],
    target: 'staging',
    from: 'dev',
    previous: 'dev',
    sourceBranch: 'dev',
    targetBranch: 'staging',
    sourceCommit: 'a'.repeat(40),
    mode: 'create',
    lockfile: { schema: 1, stages: {} } as unknown as PromotionContext['lockfile'],
    model: { path: 'out/model', hash: 'b'.repeat(64), size: 1, nfiles: 1, dir: true },
    recordedGate: 'passed',
    gate: { passed: true, baseline: null, reasons: [] },
    thresholds: [],
    local: false,
    ...over,
  };
}

describe('promotion rules', () => {
  it.each([
    { from: 'dev', ok: true, detail: 'dev → staging' },
    { from: 'staging', ok: false, detail: /skipping an environment: staging is promoted only from dev/ },
  ] as const)('promotion order from $from into staging: ok $ok', ({ from, ok, detail }) => {
    const [c] = promotionOrderRule(context({ from }));
    expect(c.name).toBe('promotion order');
    expect(c.ok).toBe(ok);
    expect(c.detail).toMatch(detail);
  });

  it.each([
    { recordedGate: 'passed', ok: true },
    { recordedGate: 'unknown', ok: true },
    { recordedGate: 'failed', ok: false },
  ] as const)('recorded gate $recordedGate: ok $ok', ({ recordedGate, ok }) => {
    const checks = recordedGateRule(context({ recordedGate }));
    expect(checks).toHaveLength(1);
    expect(checks[0]).toMatchObject({ name: 'recorded gate', ok });
  });

  it('target gate names the environment and lists only the failed reasons', () => {
    const gate = {
      passed: false,
      baseline: null,
      reasons: [
        { metric: 'f1_macro', kind: 'value' as const, passed: false, detail: 'f1_macro 0.4 < min 0.5' },
        { metric: 'accuracy', kind: 'value' as const, passed: true, detail: 'accuracy 0.9 >= min 0.5' },
      ],
    };
    const [failed] = targetGateRule(context({ gate }));
    expect(failed).toEqual({
      name: 'staging gate',
      ok: false,
      detail: "fails staging's gate: f1_macro 0.4 < min 0.5",
    });
    const [passed] = targetGateRule(
      context({ target: 'prod', thresholds: [{ metric: 'f1_macro' } as never] }),
    );
    expect(passed).toEqual({ name: 'prod gate', ok: true, detail: "passes prod's 1 thresholds" });
  });

  it('the plan is the union of the rules in order, a rule that does not apply adding none', async () => {
    const a: PromotionRule = () => [{ name: 'a', ok: true, detail: '' }];
    const none: PromotionRule = async () => [];
    const b: PromotionRule = async (): Promise<Check[]> => [
      { name: 'b1', ok: false, detail: '' },
      { name: 'b2', ok: true, detail: '' },
    ];
    const checks = await runPromotionRules(context(), [b, none, a]);
    expect(checks.map((c) => c.name)).toEqual(['b1', 'b2', 'a']);
  });

  it('every rule is a named function, so a check can be traced to its rule', () => {
    const names = PROMOTION_RULES.map((r) => r.name);
    expect(names.every((n) => /Rule$/.test(n))).toBe(true);
    expect(new Set(names).size).toBe(names.length);
  });
});
