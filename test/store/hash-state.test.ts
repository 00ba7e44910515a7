import { describe, expect, it, afterEach } from 'vitest';
import fs from 'node:fs';
import { loadHashState, unloadHashState, RACY_MS } from '../../lib/store/hash-state.ts';
import { makeRepo, rmrf } from './helpers.ts';

const cleanup: string[] = [];
afterEach(() => cleanup.splice(0).forEach(rmrf));
const OID = 'a'.repeat(64);

/** A stat key for a file last modified at `mtimeMs`. */
const key = (ino: number, mtimeMs: number) => `1:${ino}:10:${BigInt(mtimeMs) * 1_000_000n}`;

describe('hash state', () => {
  it('hash state persists 10,000 entries in one file and reloads them', async () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const state = loadHashState(repo);
    const old = Date.now() - 60_000;
    for (let i = 0; i < 10_000; i++) state.record(`data/f${i}`, key(i, old), OID, Date.now());
    await state.save();
    expect(fs.readdirSync(`${repo.stateDir}/state`)).toEqual(['hashes.json']);
    unloadHashState(repo);
    const again = loadHashState(repo);
    expect(again.size).toBe(10_000);
    expect(again.lookup('data/f9999', key(9999, old))).toBe(OID);
    // Any part of the stat key differing is a miss: inode, mtime.
    expect(again.lookup('data/f9999', key(1, old))).toBeUndefined();
    expect(again.lookup('data/f9999', key(9999, old + 1))).toBeUndefined();
  });

  it('hash state does not record files modified within the racy window of hashing', () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    const state = loadHashState(repo);
    const now = Date.now();
    state.record('fresh', key(1, now - RACY_MS + 5), OID, now);
    state.record('settled', key(2, now - RACY_MS - 5), OID, now);
    expect(state.lookup('fresh', key(1, now - RACY_MS + 5))).toBeUndefined();
    expect(state.lookup('settled', key(2, now - RACY_MS - 5))).toBe(OID);
  });

  it('hash state treats an unreadable state file as empty', () => {
    const repo = makeRepo();
    cleanup.push(repo.root);
    fs.mkdirSync(`${repo.stateDir}/state`, { recursive: true });
    fs.writeFileSync(`${repo.stateDir}/state/hashes.json`, '{not json');
    expect(loadHashState(repo).size).toBe(0);
  });
});
