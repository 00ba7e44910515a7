// `npm ci` / `npm install` postinstall: sets `merge.lockstep.driver` in the git config of the
// work tree npm was started in, so the lockfile merges per stage from the first clone on.
// Best effort and silent: it never fails the install, and does nothing in CI (CI=...), with
// LOCKSTEP_NO_MERGE_DRIVER=1, outside a git work tree, or when git is missing. --ignore-scripts
// skips it altogether. It never edits tracked files (.gitattributes is committed).
import { execFileSync } from 'node:child_process';

const optedOut = (name) => {
  const v = process.env[name];
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
};

async function main() {
  if (optedOut('CI') || optedOut('LOCKSTEP_NO_MERGE_DRIVER')) return;
  const cwd = process.env.INIT_CWD || process.cwd();
  const git = (...args) =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      timeout: 5000,
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  if (git('rev-parse', '--is-inside-work-tree') !== 'true') return;
  const root = git('rev-parse', '--show-toplevel');
  const { register } = await import('tsx/esm/api');
  register();
  const { installMergeDriver } = await import('../lib/lockfile-driver.ts');
  const result = await installMergeDriver(root, { attributes: false });
  if (result.configChanged)
    console.log(`lockstep: git merge driver for artifacts.lock.yaml installed in ${root}`);
}

try {
  await main();
} catch {
  // Not a work tree, no git, a read-only .git: the driver stays off; `npx lockstep lock
  // install-driver` installs it later and says what went wrong.
}
process.exitCode = 0;
