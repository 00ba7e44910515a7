/**
 * The prediction log keeps its file open between flushes; a file deleted or moved under it (the
 * log directory removed by hand, an external rotation, or another serving process's retention
 * on the same directory) must not swallow every later line.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  PredictionLog,
  listLogFiles,
  readPredictionLogs,
  type PredictionLogEntry,
} from '../../lib/serving/logs.ts';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-logs-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

function entry(n: number): PredictionLogEntry {
  return {
    time: new Date().toISOString(),
    env: 'dev',
    deployedModelId: String(n),
    modelVersionId: 'v1',
    modelId: 'm',
    status: 'ok',
    latencyMs: 1,
  };
}

const ids = (dir: string) => readPredictionLogs(dir).map((e) => e.deployedModelId);

describe('prediction log', () => {
  it('prediction log writes to a fresh file after its directory was deleted while open', () => {
    const dir = path.join(tmp, 'logs');
    const log = new PredictionLog(dir);
    log.write(entry(1));
    log.flush();
    fs.rmSync(dir, { recursive: true });
    log.write(entry(2));
    log.flush();
    expect(ids(dir)).toEqual(['2']);
    log.close();
  });

  it('prediction log writes to a fresh file after its file was moved away (an external rotation)', () => {
    const dir = path.join(tmp, 'logs');
    const log = new PredictionLog(dir);
    log.write(entry(1));
    log.flush();
    const [name] = listLogFiles(dir);
    fs.renameSync(path.join(dir, name), path.join(tmp, 'rotated.jsonl'));
    log.write(entry(2));
    log.flush();
    expect(ids(dir)).toEqual(['2']);
    expect(fs.readFileSync(path.join(tmp, 'rotated.jsonl'), 'utf8')).toContain('"deployedModelId":"1"');
    log.close();
  });

  it("prediction log of two processes on one directory: one process's retention deleting the other's open file loses no later line", () => {
    const dir = path.join(tmp, 'logs');
    const a = new PredictionLog(dir, { maxFiles: 2, maxBytes: 1 });
    const b = new PredictionLog(dir);
    b.write(entry(100));
    b.flush();
    // Each line of a starts a new file, and retention keeps two: b's file is deleted.
    for (let i = 1; i <= 3; i++) {
      a.write(entry(i));
      a.flush();
    }
    expect(fs.existsSync(b.files()[0])).toBe(false);
    b.write(entry(101));
    b.flush();
    expect(ids(dir)).toContain('101');
    a.close();
    b.close();
  });
});
