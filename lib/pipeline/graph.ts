/**
 * The stage DAG: stage B depends on stage A when one of B's deps and one of A's outs contain one
 * another (`out/features` and `out/features/train.json`). Duplicate names, overlapping outs and
 * cycles are errors that name the stages involved.
 */
import type { StageDef } from '../types.ts';
import { ConfigError, UsageError } from '../errors.ts';

/** True when `a` and `b` are the same path or one contains the other. */
export function overlaps(a: string, b: string): boolean {
  const na = a.replace(/\/+$/, '');
  const nb = b.replace(/\/+$/, '');
  return na === nb || na.startsWith(nb + '/') || nb.startsWith(na + '/');
}

export interface StageGraph {
  /** Stages in a topological order (declaration order among independent stages). */
  order: StageDef[];
  byName: Map<string, StageDef>;
  /** Stage name → names of the stages whose outs it reads. */
  upstream: Map<string, string[]>;
  /** Stage name → names of the stages that read its outs. */
  downstream: Map<string, string[]>;
}

/** Builds and checks the DAG. */
export function buildGraph(stages: StageDef[]): StageGraph {
  const byName = new Map<string, StageDef>();
  for (const s of stages) {
    if (!/^[A-Za-z0-9_.-]+$/.test(s.name)) {
      throw new ConfigError(
        `pipeline: stage name ${JSON.stringify(s.name)} is not allowed. Use letters, digits, _ . -`,
      );
    }
    if (byName.has(s.name))
      throw new ConfigError(`pipeline: duplicate stage name "${s.name}". Rename one of them.`);
    byName.set(s.name, s);
  }
  const outs: { stage: string; path: string }[] = [];
  for (const s of stages) {
    for (const o of s.outs) {
      const clash = outs.find((x) => overlaps(x.path, o));
      if (clash) {
        throw new ConfigError(
          `pipeline: out "${o}" of stage ${s.name} overlaps out "${clash.path}" of stage ${clash.stage}. Each path is written by one stage.`,
        );
      }
      outs.push({ stage: s.name, path: o });
    }
  }
  const upstream = new Map<string, string[]>();
  const downstream = new Map<string, string[]>(stages.map((s) => [s.name, []]));
  for (const s of stages) {
    const ups = new Set<string>();
    for (const d of s.deps)
      for (const o of outs) if (overlaps(d, o.path) && o.stage !== s.name) ups.add(o.stage);
    for (const d of s.deps) {
      if (s.outs.some((o) => overlaps(o, d))) {
        throw new ConfigError(
          `pipeline: stage ${s.name} reads "${d}", which it also writes. Remove it from deps or outs.`,
        );
      }
    }
    const list = stages.filter((x) => ups.has(x.name)).map((x) => x.name);
    upstream.set(s.name, list);
    for (const u of list) downstream.get(u)!.push(s.name);
  }
  // Kahn's algorithm, always picking the earliest-declared ready stage so the order is stable.
  const indegree = new Map(stages.map((s) => [s.name, upstream.get(s.name)!.length]));
  const order: StageDef[] = [];
  const done = new Set<string>();
  while (order.length < stages.length) {
    const next = stages.find((s) => !done.has(s.name) && indegree.get(s.name) === 0);
    if (!next) {
      const cycle = findCycle(
        stages.filter((s) => !done.has(s.name)),
        upstream,
      );
      throw new ConfigError(
        `pipeline: stages form a cycle "${cycle.join(' -> ')}". Break it by removing a dep.`,
      );
    }
    done.add(next.name);
    order.push(next);
    for (const d of downstream.get(next.name)!) indegree.set(d, indegree.get(d)! - 1);
  }
  return { order, byName, upstream, downstream };
}

function findCycle(rest: StageDef[], upstream: Map<string, string[]>): string[] {
  const names = new Set(rest.map((s) => s.name));
  let cur = rest[0]!.name;
  const seen: string[] = [];
  while (!seen.includes(cur)) {
    seen.push(cur);
    cur = upstream.get(cur)!.find((u) => names.has(u))!;
  }
  return [...seen.slice(seen.indexOf(cur)), cur];
}

/** `targets` plus every stage they (transitively) depend on, in graph order. All stages if none. */
export function selectStages(graph: StageGraph, targets: string[]): StageDef[] {
  if (targets.length === 0) return graph.order;
  const wanted = new Set<string>();
  const visit = (name: string) => {
    if (wanted.has(name)) return;
    wanted.add(name);
    for (const u of graph.upstream.get(name) ?? []) visit(u);
  };
  for (const t of targets) {
    if (!graph.byName.has(t)) {
      throw new UsageError(
        `repro: unknown stage "${t}". Stages: ${graph.order.map((s) => s.name).join(', ')}.`,
      );
    }
    visit(t);
  }
  return graph.order.filter((s) => wanted.has(s.name));
}

/** Every stage downstream of `name` (transitively), in graph order. */
export function dependentsOf(graph: StageGraph, name: string): string[] {
  const found = new Set<string>();
  const visit = (n: string) => {
    for (const d of graph.downstream.get(n) ?? []) {
      if (!found.has(d)) {
        found.add(d);
        visit(d);
      }
    }
  };
  visit(name);
  return graph.order.map((s) => s.name).filter((n) => found.has(n));
}
