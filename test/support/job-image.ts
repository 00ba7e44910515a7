/**
 * A one-stage job for `runJob` (lib/compute/worker.ts) in a folder remote: an image directory
 * holding the stage's code module and a `pipeline.mjs`, and the job's spec written under the
 * remote where `lockstep repro` puts it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { jobPaths } from '../../lib/compute/spec.ts';

/** `<dir>/image` with `stages/s.mjs` (the stage's code) and `pipeline.mjs` holding `pipeline`. */
export function writeJobImage(dir: string, pipeline: string): string {
  const image = path.join(dir, 'image');
  fs.mkdirSync(path.join(image, 'stages'), { recursive: true });
  fs.writeFileSync(path.join(image, 'stages/s.mjs'), 'export const x = 1;\n');
  fs.writeFileSync(path.join(image, 'pipeline.mjs'), pipeline);
  return image;
}

/** Writes the job's spec to the folder remote `remote` under run key `key`. */
export function writeJobSpec(remote: string, key: string, spec: object): void {
  const file = path.join(remote, jobPaths.spec(key));
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(spec) + '\n');
}
