/**
 * Strict input reading shared by the entries: the `@actions/core` way (`getInput`,
 * `getBooleanInput`), plus the working directory resolved against GITHUB_WORKSPACE.
 */
import path from 'node:path';
import * as core from '@actions/core';

/** `working-directory` input resolved to an absolute path (default: the workspace). */
export function workingDirectory(): string {
  const base = process.env.GITHUB_WORKSPACE ?? process.cwd();
  return path.resolve(base, core.getInput('working-directory') || '.');
}

/** Reads a JSON input; empty means `fallback`. Names the input when it is not JSON. */
export function jsonInput<T>(name: string, fallback: T): T {
  const raw = core.getInput(name);
  if (!raw) return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch {
    throw new Error(
      `input ${name}: not valid JSON "${raw.slice(0, 60)}". Pass a JSON value (e.g. a step output).`,
    );
  }
}

/** An environment name input, checked against the fixed order dev → staging → prod. */
export function envInput(name = 'env'): 'dev' | 'staging' | 'prod' {
  const value = core.getInput(name, { required: true });
  if (value !== 'dev' && value !== 'staging' && value !== 'prod') {
    throw new Error(`input ${name}: unknown environment "${value}". Use dev, staging or prod.`);
  }
  return value;
}
