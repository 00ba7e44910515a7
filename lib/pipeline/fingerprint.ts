/**
 * Stage inputs as hashes: the code fingerprint (sha256 over the sorted (path, content sha256)
 * list of the stage's code files, directories expanded) and the run-cache key.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createHash } from 'node:crypto';
import type { Repo } from '../repo.ts';
import type { ArtifactRef, InputRef, Oid, StageDef } from '../types.ts';
import { ConfigError } from '../errors.ts';

function listFiles(abs: string, rel: string, outList: string[]): void {
  const st = fs.statSync(abs);
  if (st.isFile()) {
    outList.push(rel);
    return;
  }
  if (!st.isDirectory()) return;
  for (const name of fs.readdirSync(abs).sort()) {
    if (name === 'node_modules' || name === '.git') continue;
    listFiles(path.join(abs, name), `${rel}/${name}`, outList);
  }
}

/** sha256 of the stage's code files; a missing code path is a ConfigError naming the stage. */
export function codeFingerprint(repo: Repo, stage: Pick<StageDef, 'name' | 'code'>): Oid {
  const files: string[] = [];
  for (const rel of stage.code) {
    const clean = rel.replace(/\/+$/, '');
    const abs = path.join(repo.root, clean);
    if (!fs.existsSync(abs)) {
      throw new ConfigError(
        `stage ${stage.name}: code path does not exist "${rel}". Fix the stage's code list.`,
      );
    }
    listFiles(abs, clean, files);
  }
  const lines = [...new Set(files)].sort().map((rel) => {
    const h = createHash('sha256')
      .update(fs.readFileSync(path.join(repo.root, rel)))
      .digest('hex');
    return `${rel}\t${h}\n`;
  });
  return createHash('sha256').update(lines.join('')).digest('hex');
}

/** Canonical JSON (sorted keys) so equal values always hash equal. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    const rec = v as Record<string, unknown>;
    return `{${Object.keys(rec)
      .sort()
      .filter((k) => rec[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(rec[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

/**
 * The run-cache key of a stage execution: everything that determines its outputs. Two runs with
 * the same key (on any branch, at any time) produce interchangeable outs.
 */
export function runKey(
  stage: Pick<StageDef, 'name' | 'outs'>,
  code: Oid,
  deps: ArtifactRef[],
  params: Record<string, unknown>,
  inputs: Record<string, InputRef> = {},
): Oid {
  const names = Object.keys(inputs).sort();
  const body = canonicalJson({
    stage: stage.name,
    code,
    deps: deps.map((d) => [d.path, d.hash]).sort(),
    params,
    outs: [...stage.outs].sort(),
    // Only stages that declare inputs carry the key, so existing run-cache keys stay valid.
    ...(names.length > 0 ? { inputs: names.map((n) => [n, inputs[n]!.hash]) } : {}),
  });
  return createHash('sha256').update(body).digest('hex');
}
