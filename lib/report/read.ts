/**
 * Reads what the PR report shows from a repository's working tree: the gate verdict, the
 * confusion matrix and the plot files (paths from `lib/paths.ts`). Missing files are
 * `undefined`, not errors: a run that stopped early still gets a report.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { PATHS } from '../paths.ts';
import { ConfigError } from '../errors.ts';
import type { GateVerdict } from '../gate.ts';
import type { Confusion } from './render.ts';

async function readJson<T>(file: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new ConfigError(`${file}: not valid JSON. Re-run the stage that writes it (lockstep repro).`);
  }
}

export interface ReportFiles {
  verdict?: GateVerdict;
  confusion?: Confusion;
  /** Plot file names in out/eval/plots, sorted. */
  plots: string[];
  /** Absolute directory of the plots (what the workflow uploads). */
  plotsDir: string;
}

/** Reads verdict, confusion matrix and plot names under `root`. */
export async function readReportFiles(root: string): Promise<ReportFiles> {
  const plotsDir = path.join(root, PATHS.eval, 'plots');
  let plots: string[];
  try {
    plots = (await readdir(plotsDir)).filter((f) => /\.(svg|png)$/.test(f)).sort();
  } catch {
    plots = [];
  }
  return {
    verdict: await readJson<GateVerdict>(path.join(root, PATHS.gate, 'verdict.json')),
    confusion: await readJson<Confusion>(path.join(root, PATHS.eval, 'confusion.json')),
    plots,
    plotsDir,
  };
}
