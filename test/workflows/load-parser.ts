/**
 * Loads @actions/workflow-parser for tests. Its ESM build imports its JSON schemas without an
 * import attribute (fine for bundlers, refused by Node), so bundle it once with esbuild into
 * node_modules/.cache and import the bundle.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import * as esbuild from 'esbuild';

type WorkflowParser = typeof import('@actions/workflow-parser');
type ActionParser = typeof import('@actions/workflow-parser/actions/index');

const root = path.resolve(import.meta.dirname, '../..');

export async function loadWorkflowParser(): Promise<WorkflowParser & ActionParser> {
  const dir = path.join(root, 'node_modules/.cache/lockstep-test');
  mkdirSync(dir, { recursive: true });
  const entry = path.join(dir, 'workflow-parser-entry.mjs');
  writeFileSync(
    entry,
    "export * from '@actions/workflow-parser';\nexport * from '@actions/workflow-parser/actions/index';\n",
  );
  const outfile = path.join(dir, `workflow-parser-${process.pid}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    logLevel: 'error',
    // Only the parser itself (and its JSON) is bundled; its dependencies load from node_modules.
    external: ['yaml', 'cronstrue', '@actions/expressions', '@actions/expressions/*'],
    absWorkingDir: root,
  });
  try {
    return (await import(pathToFileURL(outfile).href)) as WorkflowParser & ActionParser;
  } finally {
    rmSync(outfile, { force: true });
  }
}
