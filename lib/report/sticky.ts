/**
 * Keeps ONE report comment per pull request: finds the comment carrying the hidden marker and
 * edits it in place, or creates it. Takes an Octokit-shaped client as a parameter so this module
 * never imports `@actions/*` (the action entry builds it with `getOctokit`).
 */
import { REPORT_MARKER } from './render.ts';
import { commentChars, fitComment, GITHUB_COMMENT_LIMIT } from './fit.ts';
import { carrySections, findSection, replaceSection, sectionNames } from './sections.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatProblem, LockstepError } from '../errors.ts';

export { GITHUB_COMMENT_LIMIT };

interface CommentLike {
  id: number;
  body?: string | null;
  html_url?: string;
}

/** The part of Octokit's `rest.issues` this module uses. */
export interface IssueCommentsClient {
  rest: {
    issues: {
      listComments(p: {
        owner: string;
        repo: string;
        issue_number: number;
        per_page?: number;
        page?: number;
      }): Promise<{ data: CommentLike[]; headers?: { link?: string } }>;
      createComment(p: { owner: string; repo: string; issue_number: number; body: string }): Promise<{
        data: CommentLike;
      }>;
      updateComment(p: { owner: string; repo: string; comment_id: number; body: string }): Promise<{
        data: CommentLike;
      }>;
      deleteComment(p: { owner: string; repo: string; comment_id: number }): Promise<unknown>;
    };
  };
}

export interface StickyTarget {
  owner: string;
  repo: string;
  /** Pull request (issue) number. */
  issueNumber: number;
}

export interface StickyResult {
  action: 'created' | 'updated';
  id: number;
  url?: string;
}

/** Comments per page: GitHub's most. */
const PER_PAGE = 100;

/** Pages read at most (100,000 comments) before giving up with an error, never a duplicate. */
const MAX_PAGES = 1_000;

/** Finds the first (oldest) comment on the PR whose body contains `marker`. */
export async function findStickyComment(
  client: IssueCommentsClient,
  target: StickyTarget,
  marker: string = REPORT_MARKER,
): Promise<CommentLike | undefined> {
  return (await markedComments(client, target, marker, { first: true }))[0];
}

/**
 * The PR's comments whose body contains `marker`, oldest first (only the first with `first`),
 * read page by page as GitHub's `link` header leads (rel="next" until the last page).
 */
async function markedComments(
  client: IssueCommentsClient,
  target: StickyTarget,
  marker: string,
  options: { first?: boolean } = {},
): Promise<CommentLike[]> {
  const found: CommentLike[] = [];
  let page: number | undefined = 1;
  for (let pages = 1; page !== undefined; pages++) {
    if (pages > MAX_PAGES) {
      throw new LockstepError(
        `PR #${target.issueNumber} comments: more than ${MAX_PAGES * PER_PAGE} comments, read without finding all that carry ${marker}. Delete old comments from the pull request and run again.`,
      );
    }
    const res = await client.rest.issues.listComments({
      owner: target.owner,
      repo: target.repo,
      issue_number: target.issueNumber,
      per_page: PER_PAGE,
      page,
    });
    for (const c of res.data) {
      if (!isSticky(c, marker)) continue;
      found.push(c);
      if (options.first) return found;
    }
    page = nextPage(res, page);
  }
  return found;
}

/**
 * True for a comment this module wrote: its body starts with `marker` (every body it writes
 * does). A person's comment that only quotes the marker (asking what it is, say) is not one.
 */
function isSticky(c: CommentLike, marker: string): boolean {
  return typeof c.body === 'string' && c.body.trimStart().startsWith(marker);
}

/**
 * The page after `page`: the one GitHub's `link` header names rel="next", none when it names no
 * next page (the last page). A client that gives no headers: the next page while pages come full.
 */
function nextPage(res: { data: unknown[]; headers?: { link?: string } }, page: number): number | undefined {
  if (!res.headers) return res.data.length >= PER_PAGE ? page + 1 : undefined;
  const next = /<([^>]+)>\s*;\s*rel="next"/.exec(res.headers.link ?? '')?.[1];
  if (next === undefined) return undefined;
  const n = Number(new URL(next, 'https://api.github.com').searchParams.get('page'));
  return Number.isInteger(n) && n > page ? n : page + 1;
}

/** Reads and writes of the comment at most, when GitHub answers 404 (deleted meanwhile). */
const ATTEMPTS = 3;

/** How long a creator waits for older creators to write into the oldest comment (ms). */
const SETTLE_MS = 20_000;

/**
 * An error of the sticky comment's write, one line naming the fix. `status` is GitHub's answer
 * (403: the token cannot write, see {@link isPermissionDenied}).
 */
export class StickyCommentError extends LockstepError {
  readonly status: number | undefined;
  /** GitHub's rate limit (a 403 or 429): not a token without the permission. */
  readonly rateLimited: boolean;
  constructor(message: string, status?: number, cause?: unknown, rateLimited = false) {
    super(message, { cause });
    this.status = status;
    this.rateLimited = rateLimited;
  }
}

const statusOf = (err: unknown) => (err as { status?: unknown } | null)?.status;

/** `call`'s answer, or undefined when GitHub answers 404 (the comment is gone). */
async function unlessGone<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * The marked comments once no creator older than `mine` is still writing: each creator that is
 * not the oldest writes into the oldest and then deletes its own, so while a comment between the
 * oldest and `mine` is listed, its writer has not written yet. Waiting for those makes the writes
 * into the oldest one at a time, each composed from a body holding every earlier one. A creator
 * that died before deleting its comment is waited for {@link SETTLE_MS} at most.
 */
async function settle(
  client: IssueCommentsClient,
  target: StickyTarget,
  marker: string,
  mine: number,
): Promise<CommentLike[]> {
  let since = Date.now();
  for (let delay = 50; ; delay = Math.min(delay * 2, 1_000)) {
    const marked = await markedComments(client, target, marker);
    const at = marked.findIndex((c) => c.id === mine);
    if (at <= 1) return marked;
    if (Date.now() - since >= SETTLE_MS) {
      // The next-oldest creator waits for nobody, so its comment still there after the wait
      // means its writer died between creating and deleting it (a killed job). Only that one is
      // deleted: the creators between it and `mine` are alive and waiting like this one, and
      // deleting theirs would let two write into the oldest at once.
      await unlessGone(
        client.rest.issues.deleteComment({
          owner: target.owner,
          repo: target.repo,
          comment_id: marked[1]!.id,
        }),
      );
      since = Date.now();
      delay = 50;
      continue;
    }
    await sleep(delay);
  }
}

/** What GitHub said in an error answer: its JSON `message`, else the first line of its body. */
function saidBy(err: unknown): string | undefined {
  const data = (err as { response?: { data?: unknown } }).response?.data;
  const message = (data as { message?: unknown } | undefined)?.message;
  if (typeof message === 'string') return message;
  if (typeof data === 'string')
    return (
      data
        .replace(/<[^>]*>/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 200) || undefined
    );
  return undefined;
}

/** True when `err` is GitHub's rate limit (a 429, or a 403 saying so or with no requests left). */
function isRateLimited(err: unknown): boolean {
  if (err instanceof StickyCommentError) return err.rateLimited;
  const status = statusOf(err);
  if (status === 429) return true;
  if (status !== 403) return false;
  const headers = (err as { response?: { headers?: Record<string, unknown> } }).response?.headers;
  return /rate limit/i.test(saidBy(err) ?? '') || String(headers?.['x-ratelimit-remaining']) === '0';
}

/**
 * `err` as one line naming the fix when it is GitHub's answer (an error with a `status`), else
 * unchanged. A 403 is never retried: the token will not gain the permission.
 */
function explain(err: unknown, where: string): unknown {
  const status = statusOf(err);
  if (err instanceof LockstepError || typeof status !== 'number') return err;
  const said = saidBy(err);
  const problem = `GitHub answered ${status}`;
  if (isRateLimited(err)) {
    return new StickyCommentError(
      formatProblem(where, `${problem} (rate limit)`, said, 'Wait until the limit resets and run again.'),
      status,
      err,
      true,
    );
  }
  if (status === 401) {
    return new StickyCommentError(
      formatProblem(
        where,
        `${problem} (the token is not valid)`,
        said,
        "Pass the workflow's GITHUB_TOKEN (or a token that has not expired) as github-token.",
      ),
      status,
      err,
    );
  }
  if (status !== 403) {
    return new StickyCommentError(
      formatProblem(
        where,
        problem,
        said,
        status >= 500 ? 'GitHub could not answer: run again.' : 'See what GitHub said and run again.',
      ),
      status,
      err,
    );
  }
  return new StickyCommentError(
    formatProblem(
      where,
      `${problem} (the token cannot write comments on the pull request)`,
      said,
      "Grant pull-requests: write in the workflow's permissions: (a PR from a fork only gets a read-only token: write the comment from a workflow_run workflow instead).",
    ),
    403,
    err,
  );
}

/**
 * Writes the sticky comment: `compose` turns the comment's current body (undefined when the PR
 * has none) into the new one. Writers that all find no comment (the PR workflow's report and
 * `exp` runs sharing its experiments, at the same moment) all create one: each creator then
 * lists the marked comments, and all but the creator of the oldest write into the oldest,
 * composed from its body, one after the other (see {@link settle}), and then delete their own,
 * so every writer's part ends in one comment. A comment deleted between reading and writing it
 * (GitHub answers 404) is read again and written, {@link ATTEMPTS} times at most; a 404 on
 * deleting our own duplicate means it is gone already.
 */
async function writeSticky(
  client: IssueCommentsClient,
  target: StickyTarget,
  marker: string,
  compose: (current: string | undefined) => string,
): Promise<StickyResult> {
  const where = `PR #${target.issueNumber} comment`;
  try {
    return await writeAttempts(client, target, marker, compose, where);
  } catch (err) {
    throw explain(err, where);
  }
}

async function writeAttempts(
  client: IssueCommentsClient,
  target: StickyTarget,
  marker: string,
  compose: (current: string | undefined) => string,
  where: string,
): Promise<StickyResult> {
  const repo = { owner: target.owner, repo: target.repo };
  const update = (c: CommentLike) =>
    unlessGone(
      client.rest.issues.updateComment({ ...repo, comment_id: c.id, body: compose(c.body ?? marker) }),
    );
  /** The comment this writer created and has not deleted. */
  let mine: CommentLike | undefined;
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    if (!mine) {
      const existing = await findStickyComment(client, target, marker);
      if (existing) {
        const updated = await update(existing);
        if (updated) return { action: 'updated', id: updated.data.id, url: updated.data.html_url };
        continue;
      }
      ({ data: mine } = await client.rest.issues.createComment({
        ...repo,
        issue_number: target.issueNumber,
        body: compose(undefined),
      }));
    }
    const marked = await settle(client, target, marker, mine.id);
    if (!marked.some((c) => c.id === mine!.id)) {
      // Someone deleted ours: start over.
      mine = undefined;
      continue;
    }
    const oldest = marked[0]!;
    if (oldest.id === mine.id) return { action: 'created', id: mine.id, url: mine.html_url };
    const updated = await update(oldest);
    // The oldest was deleted: ours may be the oldest now.
    if (!updated) continue;
    await unlessGone(client.rest.issues.deleteComment({ ...repo, comment_id: mine.id }));
    return { action: 'updated', id: updated.data.id, url: updated.data.html_url };
  }
  throw new StickyCommentError(
    `${where}: GitHub answered 404 for the comment ${ATTEMPTS} times in a row (deleted each time between reading and writing it). Run again; if it repeats, find what deletes the comments carrying ${marker} on the pull request.`,
    404,
  );
}

/** A comment body, or a function of the characters it has room for (so it can cut itself). */
export type FittingBody = string | ((room: number) => string);

/** Characters of margin for the newlines and markers joining the parts of the comment. */
const JOIN_MARGIN = 100;

/**
 * Creates the sticky comment, or updates it when one with `marker` exists. `body` must contain
 * the marker (it is prepended when missing), so the next run finds it again. Sections another
 * workflow keeps in the comment (./sections.ts, e.g. Experiments) and `body` lacks are carried
 * over, so the comment stays single and nothing another writer put there is lost. The whole
 * comment always fits GitHub's limit: a function `body` gets the room the carried sections
 * leave; whatever still does not fit is cut in whole parts (./fit.ts).
 */
export async function upsertStickyComment(
  client: IssueCommentsClient,
  target: StickyTarget,
  body: FittingBody,
  marker: string = REPORT_MARKER,
): Promise<StickyResult> {
  return writeSticky(client, target, marker, (current) => {
    const previous = current ?? '';
    const carried = sectionNames(previous).reduce(
      (n, name) => n + commentChars(findSection(previous, name) ?? ''),
      0,
    );
    const rendered =
      typeof body === 'string'
        ? body
        : body(GITHUB_COMMENT_LIMIT - carried - commentChars(marker) - JOIN_MARGIN);
    const text = rendered.trimStart().startsWith(marker) ? rendered : `${marker}\n${rendered}`;
    return fitComment(current === undefined ? text : carrySections(previous, text), { keepSections: true });
  });
}

/** What the comment says before the PR workflow's report has been written into it. */
export const REPORT_PENDING =
  '## lockstep report\n\n_The pipeline report appears here when the PR workflow finishes._';

/**
 * Writes section `name` of the sticky comment (replacing that section only), creating the
 * comment, with a placeholder for the report, when the PR has none yet. `body` may be a
 * function of the characters the section has room for (what GitHub's limit leaves beside the
 * rest of the comment), so it can cut itself to fit.
 */
export async function upsertStickySection(
  client: IssueCommentsClient,
  target: StickyTarget,
  name: string,
  body: FittingBody,
  marker: string = REPORT_MARKER,
): Promise<StickyResult> {
  return writeSticky(client, target, marker, (existing) => {
    const current = existing ?? `${marker}\n${REPORT_PENDING}`;
    // The markers and blank lines around the section take under 100 characters.
    const room = GITHUB_COMMENT_LIMIT - commentChars(replaceSection(current, name, '')) - JOIN_MARGIN;
    return fitSection(current, name, typeof body === 'string' ? body : body(room));
  });
}

/**
 * `current` with section `name` set to `text`, within GitHub's limit: when the rest of the
 * comment leaves no room for `text`, the section says so in one line instead (and when even that
 * does not fit, the rest is cut in whole parts, see ./fit.ts).
 */
function fitSection(current: string, name: string, text: string): string {
  const whole = replaceSection(current, name, text);
  if (commentChars(whole) <= GITHUB_COMMENT_LIMIT) return whole;
  const note = `_This section did not fit beside the rest of the comment (GitHub's ${GITHUB_COMMENT_LIMIT}-character limit)._`;
  return fitComment(replaceSection(current, name, note));
}

/** The part of an Octokit client the CLI holds (`request(route, params)`). */
export interface RequestClient {
  request(
    route: string,
    params?: Record<string, unknown>,
  ): Promise<{ status: number; headers?: { link?: string }; data: any }>;
}

/** {@link IssueCommentsClient} over a `request`-style client (the CLI's GitHub client). */
export function issueCommentsClient(client: RequestClient): IssueCommentsClient {
  return {
    rest: {
      issues: {
        listComments: (p) => client.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', p),
        createComment: (p) => client.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', p),
        updateComment: (p) => client.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', p),
        deleteComment: (p) => client.request('DELETE /repos/{owner}/{repo}/issues/comments/{comment_id}', p),
      },
    },
  };
}

/**
 * True for the error a read-only token gets on a write (a PR from a fork: GitHub answers 403
 * "Resource not accessible by integration").
 */
export function isPermissionDenied(err: unknown): boolean {
  return statusOf(err) === 403 && !isRateLimited(err);
}
