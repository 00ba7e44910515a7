/**
 * Why each stage of a commit's lockfile ran: its entry against the same stage in the parent
 * commit's lockfile, cheapest check first (as the runner decides): new stage, code, params,
 * deps; a stage whose entry is unchanged did not run at that commit.
 */
import type { Lockfile } from '../types.ts';

export interface StageReason {
  /** `new`, `changed` (it ran), `unchanged` (restored or skipped), `root` (no parent lockfile). */
  state: 'new' | 'changed' | 'unchanged' | 'root';
  /** One human line, e.g. `params changed: train.lr 0.001 → 0.002`. */
  reason: string;
}

function show(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** Stage name → the reason it ran at the commit whose lockfile is `after`. */
export function stageReasons(after: Lockfile, before: Lockfile | undefined): Record<string, StageReason> {
  const out: Record<string, StageReason> = {};
  for (const [name, entry] of Object.entries(after.stages)) {
    if (!before) {
      out[name] = { state: 'root', reason: 'first lockfile in this history' };
      continue;
    }
    const prev = before.stages[name];
    if (!prev) {
      out[name] = { state: 'new', reason: 'new stage' };
      continue;
    }
    if (prev.code !== entry.code) {
      out[name] = {
        state: 'changed',
        reason: `code changed: ${prev.code.slice(0, 8)} → ${entry.code.slice(0, 8)}`,
      };
      continue;
    }
    const keys = [...new Set([...Object.keys(prev.params), ...Object.keys(entry.params)])].sort();
    const params = keys.filter((k) => show(prev.params[k]) !== show(entry.params[k]));
    if (params.length > 0) {
      const list = params
        .slice(0, 3)
        .map((k) => `${k} ${show(prev.params[k] ?? '∅')} → ${show(entry.params[k] ?? '∅')}`);
      out[name] = {
        state: 'changed',
        reason: `params changed: ${list.join(', ')}${params.length > 3 ? ` (+${params.length - 3})` : ''}`,
      };
      continue;
    }
    const prevDeps = new Map(prev.deps.map((d) => [d.path, d.hash]));
    const deps = entry.deps.filter((d) => prevDeps.get(d.path) !== d.hash).map((d) => d.path);
    if (deps.length > 0 || prev.deps.length !== entry.deps.length) {
      out[name] = { state: 'changed', reason: `deps changed: ${deps.join(', ') || 'a dep was removed'}` };
      continue;
    }
    const prevOuts = new Map(prev.outs.map((o) => [o.path, o.hash]));
    const outsChanged = entry.outs.some((o) => prevOuts.get(o.path) !== o.hash);
    out[name] = outsChanged
      ? { state: 'changed', reason: 'outs changed with the same inputs (a non-deterministic stage?)' }
      : { state: 'unchanged', reason: 'code, params and deps unchanged' };
  }
  return out;
}
