/**
 * The dashboard as a set of pages: a snapshot of the repository (re-read when refs or local
 * records change) and the page each file name shows. The server and the static export both
 * ask it for pages by file name, so their links are the same relative names.
 */
import { statSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { gitClient } from '../git-client.ts';
import type { Repo } from '../repo.ts';
import { UsageError } from '../errors.ts';
import { readDashboard, readLineages, type Dashboard, type LineageView } from './data.ts';
import { compareExperiments } from './compare.ts';
import {
  comparePage,
  environmentsPage,
  experimentsPage,
  lineagePage,
  monitoringPage,
  registryPage,
  staticComparePage,
} from './pages.ts';
import type { Page } from './html.ts';

/** The fixed pages, by file name. */
export const PAGES = ['index.html', 'environments.html', 'experiments.html', 'monitoring.html'] as const;

const LINEAGE = /^lineage-([0-9a-f]{40}|[0-9a-f]{64})\.html$/;

/** Modification times of the local records the dashboard reads (endpoints, deployments, reports). */
function localStamp(repo: Repo): string {
  const parts: string[] = [];
  const dirs = [
    path.join(repo.stateDir, 'endpoints'),
    path.join(repo.stateDir, 'deployments'),
    path.join(repo.root, 'promotion'),
    ...['dev', 'staging', 'prod'].map((env) => path.join(repo.root, 'out', 'monitor', env)),
  ];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names.sort()) {
      try {
        const s = statSync(path.join(dir, n));
        parts.push(`${dir}/${n}:${s.mtimeMs}:${s.size}`);
      } catch {
        // removed meanwhile
      }
    }
  }
  return parts.join('\n');
}

export class Site {
  private snapshot?: { stamp: string; dashboard: Dashboard; pages: Map<string, Page> };
  private lineages = new Map<string, LineageView>();
  private loading?: Promise<Dashboard>;

  constructor(readonly repo: Repo) {}

  /** A cheap fingerprint of everything the dashboard reads: every ref, and the local records. */
  private async stamp(): Promise<string> {
    const refs = await gitClient(this.repo.root).raw(['for-each-ref', '--format=%(refname) %(objectname)']);
    return `${refs}\n${localStamp(this.repo)}`;
  }

  /** The current snapshot, re-read when a ref or a local record changed since the last one. */
  async dashboard(): Promise<Dashboard> {
    const stamp = await this.stamp();
    if (this.snapshot?.stamp === stamp) return this.snapshot.dashboard;
    // Concurrent requests share one read.
    this.loading ??= readDashboard(this.repo).finally(() => (this.loading = undefined));
    const dashboard = await this.loading;
    if (this.snapshot?.dashboard !== dashboard) {
      this.snapshot = { stamp, dashboard, pages: new Map() };
      this.lineages = new Map();
    }
    return dashboard;
  }

  /** The lineage page data of a registry commit, or undefined when no registry entry has it. */
  async lineage(commit: string): Promise<LineageView | undefined> {
    const d = await this.dashboard();
    const cached = this.lineages.get(commit);
    if (cached) return cached;
    const entry = d.registry.find((e) => e.commit === commit);
    if (!entry) return undefined;
    const view = (await readLineages(this.repo, [entry])).get(commit);
    if (view) this.lineages.set(commit, view);
    return view;
  }

  /** Every registry entry's lineage (the export writes them all), read through one git reader. */
  async allLineages(): Promise<LineageView[]> {
    const d = await this.dashboard();
    const map = await readLineages(this.repo, d.registry);
    for (const [k, v] of map) this.lineages.set(k, v);
    return [...map.values()];
  }

  /**
   * The page named `file` (`index.html`, `lineage-<commit>.html`, ...), or undefined for an
   * unknown name. `compare.html` takes the experiment names; without them (the static export)
   * it is the page that compares in the browser.
   */
  async page(file: string, query: { exp?: string[] } = {}): Promise<Page | undefined> {
    const d = await this.dashboard();
    if (file === 'compare.html') {
      if (!query.exp) return staticComparePage(d.experiments);
      return comparePage(compareExperiments(d.experiments, query.exp));
    }
    const pages = this.snapshot!.pages;
    const hit = pages.get(file);
    if (hit) return hit;
    let page: Page | undefined;
    if (file === 'index.html') page = registryPage(d);
    else if (file === 'environments.html') page = environmentsPage(d);
    else if (file === 'experiments.html') page = experimentsPage(d);
    else if (file === 'monitoring.html') page = await monitoringPage(d);
    else {
      const m = LINEAGE.exec(file);
      const view = m ? await this.lineage(m[1]!) : undefined;
      if (view) page = lineagePage(view);
    }
    if (page) pages.set(file, page);
    return page;
  }
}

/** Checks a `compare.html` query: one or more `exp` names. */
export function compareQuery(raw: unknown): { exp?: string[] } {
  const exp = (raw as { exp?: unknown } | undefined)?.exp;
  if (exp === undefined) return {};
  const list = Array.isArray(exp) ? exp : [exp];
  if (!list.every((e) => typeof e === 'string'))
    throw new UsageError(`compare.html: exp must be experiment names "${String(exp)}". Pass ?exp=a&exp=b.`);
  return { exp: list as string[] };
}
