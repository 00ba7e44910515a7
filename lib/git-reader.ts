/**
 * One `git cat-file --batch` process answering every object lookup of a command: a revision to
 * its commit, a file at a commit, a blob by id. Requests are pipelined (written as they come,
 * answered in order), so reading a thousand lockfiles costs one process and one pipe, not a
 * thousand `git` start-ups. Open one per operation and close it when done.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { existsSync } from 'node:fs';
import { GitNotFoundError, LockstepError, formatProblem, isGitNotFound } from './errors.ts';

/** An object read from the object database. */
export interface GitObject {
  /** Full object id. */
  oid: string;
  type: 'blob' | 'tree' | 'commit' | 'tag';
  content: Buffer;
}

interface Pending {
  resolve(obj: GitObject | undefined): void;
  reject(err: Error): void;
}

const HEADER = /^([0-9a-f]{40,64}) (blob|tree|commit|tag) (\d+)$/;

/** A session over one `git cat-file --batch` process in the repository at `root`. */
export class GitReader {
  readonly root: string;
  private child?: ChildProcessByStdio<Writable, Readable, Readable>;
  private readonly pending: Pending[] = [];
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** Size of the object whose content is being read, once its header has been parsed. */
  private body?: { oid: string; type: GitObject['type']; size: number };
  private stderr = '';
  private failed?: Error;
  private exited = false;

  constructor(root: string) {
    this.root = root;
  }

  private start(): ChildProcessByStdio<Writable, Readable, Readable> {
    if (this.child) return this.child;
    const child = spawn('git', ['cat-file', '--batch'], {
      cwd: this.root,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    child.stderr.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-2000);
    });
    // A write after git exited (EPIPE) is reported through 'close' below.
    child.stdin.on('error', () => {});
    child.on('error', (err) => this.fail(err));
    child.on('close', (code) => {
      this.exited = true;
      if (this.pending.length > 0) {
        const why = this.stderr.trim().split('\n')[0] || `git cat-file exited with code ${code}`;
        this.fail(new Error(why));
      }
    });
    this.child = child;
    return child;
  }

  private fail(err: Error): void {
    this.failed =
      isGitNotFound(err) && existsSync(this.root)
        ? new GitNotFoundError({ cause: err })
        : new LockstepError(
            `${this.root}: cannot read git objects (${err.message}). Run lockstep inside a git repository with git installed.`,
            { cause: err },
          );
    for (const p of this.pending.splice(0)) p.reject(this.failed);
  }

  /** Takes `n` bytes off the front of the buffered output. */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.buffered);
    const head = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return head;
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    for (;;) {
      if (this.body) {
        // Content, then the newline cat-file prints after it.
        if (this.buffered < this.body.size + 1) return;
        const { oid, type, size } = this.body;
        const content = Buffer.from(this.take(size + 1).subarray(0, size));
        this.body = undefined;
        this.pending.shift()?.resolve({ oid, type, content });
        continue;
      }
      const nl = this.indexOfNewline();
      if (nl < 0) return;
      const line = this.take(nl + 1)
        .subarray(0, nl)
        .toString('utf8');
      const m = HEADER.exec(line);
      if (m) {
        this.body = { oid: m[1]!, type: m[2] as GitObject['type'], size: Number(m[3]) };
        continue;
      }
      // `<name> missing` or `<name> ambiguous`: the name resolves to no single object.
      this.pending.shift()?.resolve(undefined);
    }
  }

  private indexOfNewline(): number {
    let offset = 0;
    for (const c of this.chunks) {
      const i = c.indexOf(10);
      if (i >= 0) return offset + i;
      offset += c.length;
    }
    return -1;
  }

  /**
   * The object `name` names (any revision expression git understands: `HEAD~3^{commit}`,
   * `<commit>:artifacts.lock.yaml`, a blob id), or undefined when it names nothing.
   */
  read(name: string): Promise<GitObject | undefined> {
    if (this.failed) return Promise.reject(this.failed);
    // A newline would split the request in two; such a name cannot name an object anyway.
    if (name.length === 0 || /[\n\r]/.test(name)) return Promise.resolve(undefined);
    const child = this.start();
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      child.stdin.write(`${name}\n`);
    });
  }

  /** The commit `rev` resolves to (branches, tags, `HEAD~2`, short ids), or undefined. */
  async revParse(rev: string): Promise<string | undefined> {
    const obj = await this.read(`${rev}^{commit}`);
    return obj?.type === 'commit' ? obj.oid : undefined;
  }

  /** The commit `rev` resolves to; a LockstepError naming the revision when it names none. */
  async resolve(rev: string): Promise<string> {
    const commit = await this.revParse(rev).catch((err: unknown) => {
      if (err instanceof GitNotFoundError) throw err;
      return undefined;
    });
    if (commit) return commit;
    throw new LockstepError(
      formatProblem('git', 'unknown revision', rev, 'Use a branch, tag or commit that exists (git log).'),
    );
  }

  /** The blob of `relPath` at `commit` (id and bytes), or undefined when the file is absent. */
  async fileAt(commit: string, relPath: string): Promise<GitObject | undefined> {
    const obj = await this.read(`${commit}:${relPath.replace(/^\.\//, '')}`);
    return obj?.type === 'blob' ? obj : undefined;
  }

  /** Ends the git process; pending reads still get their answers first. */
  async close(): Promise<void> {
    const child = this.child;
    if (!child || this.exited) return;
    await new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.stdin.end();
    });
  }
}

/** Runs `fn` with a reader for `root` and closes the reader afterwards. */
export async function withGitReader<T>(root: string, fn: (reader: GitReader) => Promise<T>): Promise<T> {
  const reader = new GitReader(root);
  try {
    return await fn(reader);
  } finally {
    await reader.close();
  }
}
