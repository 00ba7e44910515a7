/**
 * The serving image without Docker: reads the Dockerfile and lays out its final stage's files in
 * a temp folder the way `docker build` would, so a test (and `npm run bench -- container`) can
 * run the image's CMD and HEALTHCHECK on exactly what the image holds.
 *
 * What it follows, stage by stage (each stage gets its own folder standing for its WORKDIR):
 * - `COPY <src>... <dest>` from the build context (this repository), honouring .dockerignore
 *   for the patterns it uses (names and `**\/name`); `COPY --from=<stage> <abs src> <dest>` from
 *   an earlier stage's folder.
 * - `RUN` lines, split on `&&`: `npm ci <flags>` runs with the same flags plus
 *   `--prefer-offline` (packages come from the npm cache when it has them); `node <args>` runs
 *   as written. `mkdir -p <dirs>` makes those folders; `chown <owner> <paths>` is recorded (in
 *   `owned`) for the test to hand them to the unprivileged user it runs the CMD as; `npm cache
 *   clean` is skipped (it changes npm's cache, not the image's files).
 * - `USER` of the final stage is returned (`user`): everything else in the image belongs to root,
 *   so a test running as root runs the CMD as an unprivileged user to match.
 *   One shortcut: a full `npm ci` (no `--omit`) in a stage that is not the last installs what
 *   this repository's own `npm ci` installed from the same lockfile, so that stage links this
 *   repository's node_modules instead of installing again.
 * - `CMD`, `HEALTHCHECK CMD` and `ENV` (exec and key=value forms) are returned to run.
 * Anything else it does not know (ADD, a shell-form CMD) is an error, so the Dockerfile cannot
 * drift away from what is tested.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

export interface Image {
  /** The folder standing for the final stage's WORKDIR. */
  app: string;
  /** Environment from ENV lines. */
  env: Record<string, string>;
  cmd: string[];
  healthcheck?: string[];
  /** The final stage's USER, if any (the CMD runs as that user, not root). */
  user?: string;
  /** Paths (in the layout) the final stage chowns to a user: the only ones it may write. */
  owned: string[];
  /** Seconds the final stage's `npm ci` took. */
  installSeconds: number;
  cleanup(): void;
}

interface Instruction {
  op: string;
  args: string;
  line: number;
}

/** Dockerfile lines joined at trailing backslashes, comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const start = i;
    let line = lines[i]!;
    if (/^\s*(#|$)/.test(line)) continue;
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + ' ' + lines[++i]!.trim();
    const m = /^\s*(\w+)\s+(.*)$/.exec(line);
    if (!m) throw new Error(`Dockerfile:${start + 1}: cannot read "${line}". Use INSTRUCTION arguments.`);
    out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim(), line: start + 1 });
  }
  return out;
}

function execForm(ins: Instruction, args = ins.args): string[] {
  try {
    const v = JSON.parse(args) as unknown;
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // fall through
  }
  throw new Error(`Dockerfile:${ins.line}: ${ins.op} is not in exec form "${args}". Write ["cmd", "arg"].`);
}

function parseEnv(args: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const m of args.matchAll(/(\w+)=("([^"]*)"|\S+)/g)) env[m[1]!] = m[3] ?? m[2]!;
  return env;
}

function dockerignore(): (rel: string) => boolean {
  const file = path.join(ROOT, '.dockerignore');
  const pats = fs.existsSync(file)
    ? fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  return (rel) => {
    const parts = rel.split('/');
    return pats.some((p) =>
      p.startsWith('**/')
        ? parts.includes(p.slice(3))
        : rel === p || rel.startsWith(p + '/') || p === parts[0],
    );
  };
}

/** Copies `src` (file or folder) to `dest`, skipping ignored context paths. */
function copyInto(src: string, dest: string, ignored?: (rel: string) => boolean): void {
  fs.cpSync(src, dest, {
    recursive: true,
    dereference: true,
    filter: (from) => !ignored?.(path.relative(ROOT, from).split(path.sep).join('/')),
  });
}

/**
 * Lays out the final stage of `dockerfile` (default: this repository's) in a temp folder.
 * Runs real `npm ci` with the Dockerfile's flags, so it takes seconds to a minute.
 */
export function layOutImage(dockerfile = path.join(ROOT, 'Dockerfile')): Image {
  const instructions = parseDockerfile(fs.readFileSync(dockerfile, 'utf8'));
  const base = fs.mkdtempSync(path.join(os.tmpdir(), 'lockstep-image-'));
  const ignored = dockerignore();
  const stages: { name: string; dir: string; workdir: string }[] = [];
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  let installSeconds = 0;
  let env: Record<string, string> = {};
  let cmd: string[] | undefined;
  let healthcheck: string[] | undefined;
  let user: string | undefined;
  const owned: string[] = [];
  try {
    instructions.forEach((ins, index) => {
      const stage = stages.at(-1);
      if (ins.op === 'FROM') {
        const name = /\bAS\s+(\S+)/i.exec(ins.args)?.[1] ?? String(stages.length);
        const dir = path.join(base, `stage-${stages.length}`);
        fs.mkdirSync(dir);
        stages.push({ name, dir, workdir: '/' });
        env = {};
        return;
      }
      if (!stage) throw new Error(`Dockerfile:${ins.line}: ${ins.op} before FROM. Start with FROM.`);
      const isFinal = index > lastFrom;
      const here = (p: string): string => {
        const abs = path.posix.resolve(stage.workdir, p);
        return path.join(stage.dir, abs);
      };
      switch (ins.op) {
        case 'WORKDIR':
          stage.workdir = path.posix.resolve(stage.workdir, ins.args);
          fs.mkdirSync(here('.'), { recursive: true });
          return;
        case 'ENV':
          env = { ...env, ...parseEnv(ins.args) };
          return;
        case 'COPY': {
          const words = ins.args.split(/\s+/);
          const flags = words.filter((w) => w.startsWith('--'));
          const paths = words.filter((w) => !w.startsWith('--'));
          const dest = paths.pop()!;
          const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
          for (const src of paths) {
            let source: string;
            if (from) {
              const s = stages.find((x) => x.name === from);
              if (!s)
                throw new Error(`Dockerfile:${ins.line}: no stage "${from}". Name it with FROM ... AS.`);
              source = path.join(s.dir, path.posix.resolve(s.workdir, src));
            } else source = path.join(ROOT, src);
            const target =
              dest.endsWith('/') || paths.length > 1 ? path.join(here(dest), path.basename(src)) : here(dest);
            copyInto(source, target, from ? undefined : ignored);
          }
          return;
        }
        case 'RUN':
          for (const part of ins.args.split('&&').map((s) => s.trim())) {
            const argv = part.split(/\s+/);
            if (argv[0] === 'npm' && argv[1] === 'ci') {
              const flags = argv.slice(2);
              const started = performance.now();
              if (!isFinal && !flags.some((f) => f.startsWith('--omit'))) {
                fs.symlinkSync(path.join(ROOT, 'node_modules'), here('node_modules'), 'dir');
              } else {
                execFileSync('npm', ['ci', ...flags, '--prefer-offline'], { cwd: here('.'), stdio: 'pipe' });
              }
              if (isFinal) installSeconds = (performance.now() - started) / 1000;
            } else if (argv[0] === 'node') {
              execFileSync(process.execPath, argv.slice(1), { cwd: here('.'), stdio: 'pipe' });
            } else if (argv[0] === 'mkdir') {
              for (const dir of argv.slice(1).filter((a) => !a.startsWith('-')))
                fs.mkdirSync(here(dir), { recursive: true });
            } else if (argv[0] === 'chown') {
              const [, ...rest] = argv.slice(1).filter((a) => !a.startsWith('-'));
              if (isFinal) owned.push(...rest.map(here));
            } else if (!(argv[0] === 'npm' && argv[1] === 'cache')) {
              throw new Error(
                `Dockerfile:${ins.line}: RUN "${part}" is not something the layout follows. Use npm ci or node.`,
              );
            }
          }
          return;
        case 'CMD':
          if (isFinal) cmd = execForm(ins);
          return;
        case 'HEALTHCHECK': {
          const m = /\bCMD\s+(.*)$/.exec(ins.args);
          if (isFinal && m) healthcheck = execForm(ins, m[1]);
          return;
        }
        case 'USER':
          if (isFinal) user = ins.args;
          return;
        case 'EXPOSE':
        case 'LABEL':
        case 'ARG':
          return;
        default:
          throw new Error(
            `Dockerfile:${ins.line}: ${ins.op} is not followed by the layout. Use COPY, RUN npm ci or node.`,
          );
      }
    });
    const final = stages.at(-1);
    if (!final || !cmd) throw new Error(`${dockerfile}: no final stage with a CMD. Add CMD ["node", ...].`);
    // Only the final stage is the image; earlier stages' folders go now.
    for (const s of stages.slice(0, -1)) fs.rmSync(s.dir, { recursive: true, force: true });
    const app = path.join(final.dir, final.workdir);
    return {
      app,
      env,
      cmd,
      healthcheck,
      user,
      owned,
      installSeconds,
      cleanup: () => fs.rmSync(base, { recursive: true, force: true }),
    };
  } catch (err) {
    fs.rmSync(base, { recursive: true, force: true });
    throw err;
  }
}

/** Bytes under `dir` (files only, symlinks not followed). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += folderBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}
