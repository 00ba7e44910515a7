/**
 * The Dockerfile, read by a real Dockerfile parser (dockerfile-ast) and linted by
 * dockerfile-utils: no lint problems, every base image pinned by digest, the final stage runs as
 * a user other than root. Each rule is also run on a bad Dockerfile, so it can fail.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { validate } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';

const root = path.resolve(import.meta.dirname, '../..');
const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');

/** Lint findings (errors and warnings: LSP severities 1 and 2) as `line: message`. */
function lintProblems(text: string): string[] {
  return validate(text)
    .filter((d) => d.severity === 1 || d.severity === 2)
    .map((d) => `${d.range.start.line + 1}: ${d.message}`);
}

/** FROM lines whose image is neither pinned by a sha256 digest nor an earlier stage. */
function unpinnedBases(text: string): string[] {
  const stages = new Set<string>();
  const problems: string[] = [];
  for (const from of DockerfileParser.parse(text).getFROMs()) {
    const image = from.getImageName() ?? '';
    const digest = from.getImageDigest() ?? '';
    if (!stages.has(image) && !/^sha256:[0-9a-f]{64}$/.test(digest))
      problems.push(`${from.getRange().start.line + 1}: ${from.getImage() ?? ''}`);
    const stage = from.getBuildStage();
    if (stage) stages.add(stage);
  }
  return problems;
}

/** The USER of the final stage (undefined: the image runs as root). */
function finalUser(text: string): string | undefined {
  const instructions = DockerfileParser.parse(text).getInstructions();
  let user: string | undefined;
  for (const ins of instructions) {
    const keyword = ins.getKeyword();
    if (keyword === 'FROM') user = undefined;
    if (keyword === 'USER') user = ins.getArgumentsContent() ?? undefined;
  }
  return user;
}

describe('Dockerfile', () => {
  it('Dockerfile has no lint errors or warnings', () => {
    expect(lintProblems(dockerfile)).toEqual([]);
  });

  it('Dockerfile pins every base image by digest', () => {
    expect(DockerfileParser.parse(dockerfile).getFROMs().length).toBeGreaterThanOrEqual(2);
    expect(unpinnedBases(dockerfile)).toEqual([]);
  });

  it('Dockerfile final stage runs as a non-root user', () => {
    const user = finalUser(dockerfile);
    expect(user).toBeDefined();
    expect(user!.split(':')[0]).not.toMatch(/^(root|0)$/);
  });

  it('the rules catch a tag-only base, a root final stage and a lint error', () => {
    const digest = 'sha256:' + 'a'.repeat(64);
    const bad = `FROM node:20-slim@${digest} AS build\nUSER node\nFROM node:20-slim\nFROM build\nUSER root\nEXPOSE http\n`;
    expect(unpinnedBases(bad)).toEqual(['3: node:20-slim']);
    expect(finalUser(bad)).toBe('root');
    expect(finalUser('FROM scratch\n')).toBeUndefined();
    expect(lintProblems(bad).join('\n')).toMatch(/^6: /m);
  });
});
