/**
 * An in-memory GitHub REST API on 127.0.0.1 for tests: issue comments, pulls, git refs, repos,
 * deployments and deployment statuses. Point `GITHUB_API_URL` at `url` and `@actions/github`'s
 * Octokit talks to it. Every request is recorded. Setting `state.readOnly = true` makes every
 * write answer 403 the way GitHub answers a fork's read-only `GITHUB_TOKEN`.
 *
 * Routes live in `routes` (method + path pattern + handler), matched in order: extend it with
 * `fake.routes.push(...)`, override a default with `fake.routes.unshift(...)`, or pass
 * `startFakeGitHub({ routes: [...] })` (tried before the defaults).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeComment {
  id: number;
  body: string;
  user: { login: string; type: string };
  html_url: string;
  created_at: string;
  updated_at: string;
}

export interface FakePull {
  number: number;
  title: string;
  body: string;
  state: 'open' | 'closed';
  head: { ref: string; sha: string };
  base: { ref: string; sha: string };
  html_url: string;
  merged: boolean;
  labels: { name: string }[];
}

export interface FakeDeployment {
  id: number;
  ref: string;
  sha: string;
  environment: string;
  task: string;
  description: string;
  payload: unknown;
  statuses: { id: number; state: string; description?: string; environment_url?: string; log_url?: string }[];
}

export interface FakeState {
  owner: string;
  repo: string;
  defaultBranch: string;
  /** When true, every non-GET request answers 403 "Resource not accessible by integration". */
  readOnly: boolean;
  /** Issue (or PR) number -> its comments, oldest first. */
  comments: Map<number, FakeComment[]>;
  pulls: FakePull[];
  /** Full ref name (`heads/main`, `tags/v1`) -> commit sha. */
  refs: Map<string, string>;
  deployments: FakeDeployment[];
  nextId: number;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: URLSearchParams;
  body: any;
  status: number;
}

export interface RouteContext {
  state: FakeState;
  params: Record<string, string>;
  query: URLSearchParams;
  body: any;
  /** Base URL of the server, for `url`/`html_url` fields. */
  url: string;
}

export interface RouteReply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
  /** Path with `:name` segments, e.g. `/repos/:owner/:repo/issues/:number/comments`. */
  path: string;
  handle(ctx: RouteContext): RouteReply;
}

export interface FakeGitHub {
  url: string;
  state: FakeState;
  requests: RecordedRequest[];
  routes: Route[];
  /** Back to a fresh server's state (no comments, pulls, refs, deployments or requests). */
  reset(): void;
  close(): Promise<void>;
}

const now = () => new Date().toISOString();
/** GitHub's 404 body: `{"message":"Not Found","documentation_url":...,"status":"404"}`. */
const notFound = (doc = 'https://docs.github.com/rest'): RouteReply => ({
  status: 404,
  body: { message: 'Not Found', documentation_url: doc, status: '404' },
});
const COMMENT_DOCS = 'https://docs.github.com/rest/issues/comments';
const num = (s: string | undefined) => Number.parseInt(s ?? '', 10);

/**
 * Slices a list the way GitHub pages (`per_page` default 30, at most 100; `page` from 1), with
 * GitHub's `link` header: `prev`, `next`, `last` and `first` as they apply, each URL keeping the
 * request's other query parameters. A list that fits one page gets no `link` header.
 */
function paged<T>(items: T[], ctx: RouteContext, path: string): RouteReply {
  const asked = num(ctx.query.get('per_page') ?? '');
  const perPage = asked > 0 ? Math.min(100, asked) : 30;
  const page = Math.max(1, num(ctx.query.get('page') ?? '') || 1);
  const body = items.slice((page - 1) * perPage, page * perPage);
  const last = Math.max(1, Math.ceil(items.length / perPage));
  const at = (n: number) => {
    const q = new URLSearchParams(ctx.query);
    q.set('per_page', String(perPage));
    q.set('page', String(n));
    return `<${ctx.url}${path}?${q}>`;
  };
  const links: string[] = [];
  if (page > 1) links.push(`${at(Math.min(page - 1, last))}; rel="prev"`);
  if (page < last) links.push(`${at(page + 1)}; rel="next"`, `${at(last)}; rel="last"`);
  if (page > 1) links.push(`${at(1)}; rel="first"`);
  return { status: 200, body, headers: links.length ? { link: links.join(', ') } : {} };
}

/** GitHub's comment body limit, in characters (code points, as GitHub counts them). */
const COMMENT_LIMIT = 65_536;
const isTooLong = (body: unknown) => [...String(body ?? '')].length > COMMENT_LIMIT;
function tooLong(): RouteReply {
  return {
    status: 422,
    body: {
      message: 'Validation Failed',
      errors: [
        {
          resource: 'IssueComment',
          code: 'custom',
          field: 'body',
          message: `body is too long (maximum is ${COMMENT_LIMIT} characters)`,
        },
      ],
    },
  };
}

function commentsOf(state: FakeState, issue: number): FakeComment[] {
  let list = state.comments.get(issue);
  if (!list) state.comments.set(issue, (list = []));
  return list;
}

function findComment(state: FakeState, id: number): FakeComment | undefined {
  for (const list of state.comments.values()) {
    const c = list.find((x) => x.id === id);
    if (c) return c;
  }
  return undefined;
}

/** The default route table. */
export function defaultRoutes(): Route[] {
  return [
    {
      method: 'GET',
      path: '/repos/:owner/:repo',
      handle: ({ state, url }) => ({
        status: 200,
        body: {
          id: 1,
          name: state.repo,
          full_name: `${state.owner}/${state.repo}`,
          default_branch: state.defaultBranch,
          owner: { login: state.owner },
          html_url: `${url}/${state.owner}/${state.repo}`,
          permissions: { admin: false, push: !state.readOnly, pull: true },
        },
      }),
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/issues/:number/comments',
      handle: (ctx) =>
        paged(
          commentsOf(ctx.state, num(ctx.params.number)),
          ctx,
          `/repos/${ctx.params.owner}/${ctx.params.repo}/issues/${ctx.params.number}/comments`,
        ),
    },
    {
      method: 'POST',
      path: '/repos/:owner/:repo/issues/:number/comments',
      handle: ({ state, params, body, url }) => {
        if (isTooLong(body?.body)) return tooLong();
        const id = state.nextId++;
        const comment: FakeComment = {
          id,
          body: String(body?.body ?? ''),
          user: { login: 'github-actions[bot]', type: 'Bot' },
          html_url: `${url}/${params.owner}/${params.repo}/pull/${params.number}#issuecomment-${id}`,
          created_at: now(),
          updated_at: now(),
        };
        commentsOf(state, num(params.number)).push(comment);
        return { status: 201, body: comment };
      },
    },
    {
      method: 'PATCH',
      path: '/repos/:owner/:repo/issues/comments/:id',
      handle: ({ state, params, body }) => {
        const c = findComment(state, num(params.id));
        if (!c) return notFound(`${COMMENT_DOCS}#update-an-issue-comment`);
        if (isTooLong(body?.body)) return tooLong();
        c.body = String(body?.body ?? '');
        c.updated_at = now();
        return { status: 200, body: c };
      },
    },
    {
      method: 'DELETE',
      path: '/repos/:owner/:repo/issues/comments/:id',
      handle: ({ state, params }) => {
        for (const list of state.comments.values()) {
          const i = list.findIndex((x) => x.id === num(params.id));
          if (i >= 0) {
            list.splice(i, 1);
            return { status: 204 };
          }
        }
        return notFound(`${COMMENT_DOCS}#delete-an-issue-comment`);
      },
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/pulls',
      handle: (ctx) => {
        const wanted = ctx.query.get('state') ?? 'open';
        const head = ctx.query.get('head');
        const base = ctx.query.get('base');
        const list = ctx.state.pulls.filter(
          (p) =>
            (wanted === 'all' || p.state === wanted) &&
            (!head || `${ctx.state.owner}:${p.head.ref}` === head || p.head.ref === head) &&
            (!base || p.base.ref === base),
        );
        return paged(list, ctx, `/repos/${ctx.params.owner}/${ctx.params.repo}/pulls`);
      },
    },
    {
      method: 'POST',
      path: '/repos/:owner/:repo/pulls',
      handle: ({ state, params, body, url }) => {
        if (!body?.head || !body?.base || !body?.title) {
          return { status: 422, body: { message: 'Validation Failed: head, base and title are required' } };
        }
        const number = state.nextId++;
        const pull: FakePull = {
          number,
          title: String(body.title),
          body: String(body.body ?? ''),
          state: 'open',
          head: {
            ref: String(body.head).replace(/^[^:]+:/, ''),
            sha: state.refs.get(`heads/${body.head}`) ?? '',
          },
          base: { ref: String(body.base), sha: state.refs.get(`heads/${body.base}`) ?? '' },
          html_url: `${url}/${params.owner}/${params.repo}/pull/${number}`,
          merged: false,
          labels: [],
        };
        state.pulls.push(pull);
        return { status: 201, body: pull };
      },
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/pulls/:number',
      handle: ({ state, params }) => {
        const p = state.pulls.find((x) => x.number === num(params.number));
        return p ? { status: 200, body: p } : notFound();
      },
    },
    {
      method: 'PATCH',
      path: '/repos/:owner/:repo/pulls/:number',
      handle: ({ state, params, body }) => {
        const p = state.pulls.find((x) => x.number === num(params.number));
        if (!p) return notFound();
        if (typeof body?.title === 'string') p.title = body.title;
        if (typeof body?.body === 'string') p.body = body.body;
        if (body?.state === 'open' || body?.state === 'closed') p.state = body.state;
        return { status: 200, body: p };
      },
    },
    {
      // Labels of a pull request (an issue number); GitHub creates labels the repository lacks.
      method: 'POST',
      path: '/repos/:owner/:repo/issues/:number/labels',
      handle: ({ state, params, body }) => {
        const p = state.pulls.find((x) => x.number === num(params.number));
        if (!p) return notFound();
        if (!Array.isArray(body?.labels))
          return { status: 422, body: { message: 'Validation Failed: labels must be an array' } };
        for (const name of body.labels as string[])
          if (!p.labels.some((l) => l.name === name)) p.labels.push({ name: String(name) });
        return { status: 200, body: p.labels };
      },
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/git/ref/:ref*',
      handle: ({ state, params, url }) => {
        const sha = state.refs.get(params.ref);
        if (!sha) return notFound();
        return {
          status: 200,
          body: { ref: `refs/${params.ref}`, object: { sha, type: 'commit', url: `${url}/c/${sha}` } },
        };
      },
    },
    {
      method: 'POST',
      path: '/repos/:owner/:repo/git/refs',
      handle: ({ state, body }) => {
        const ref = String(body?.ref ?? '').replace(/^refs\//, '');
        if (!ref || !body?.sha)
          return { status: 422, body: { message: 'Validation Failed: ref and sha are required' } };
        if (state.refs.has(ref)) return { status: 422, body: { message: 'Reference already exists' } };
        state.refs.set(ref, String(body.sha));
        return { status: 201, body: { ref: `refs/${ref}`, object: { sha: body.sha, type: 'commit' } } };
      },
    },
    {
      method: 'PATCH',
      path: '/repos/:owner/:repo/git/refs/:ref*',
      handle: ({ state, params, body }) => {
        if (!state.refs.has(params.ref)) return notFound();
        state.refs.set(params.ref, String(body?.sha));
        return {
          status: 200,
          body: { ref: `refs/${params.ref}`, object: { sha: body?.sha, type: 'commit' } },
        };
      },
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/deployments',
      handle: (ctx) => {
        const env = ctx.query.get('environment');
        const list = ctx.state.deployments
          .filter((d) => !env || d.environment === env)
          .slice()
          .reverse();
        return paged(
          list.map(({ statuses: _s, ...d }) => d),
          ctx,
          `/repos/${ctx.params.owner}/${ctx.params.repo}/deployments`,
        );
      },
    },
    {
      method: 'POST',
      path: '/repos/:owner/:repo/deployments',
      handle: ({ state, body }) => {
        if (!body?.ref) return { status: 422, body: { message: 'Validation Failed: ref is required' } };
        const d: FakeDeployment = {
          id: state.nextId++,
          ref: String(body.ref),
          sha: state.refs.get(`heads/${body.ref}`) ?? String(body.ref),
          environment: String(body.environment ?? 'production'),
          task: String(body.task ?? 'deploy'),
          description: String(body.description ?? ''),
          payload: body.payload ?? {},
          statuses: [],
        };
        state.deployments.push(d);
        const { statuses: _s, ...shown } = d;
        return { status: 201, body: shown };
      },
    },
    {
      method: 'GET',
      path: '/repos/:owner/:repo/deployments/:id/statuses',
      handle: (ctx) => {
        const d = ctx.state.deployments.find((x) => x.id === num(ctx.params.id));
        if (!d) return notFound();
        return paged(
          d.statuses.slice().reverse(),
          ctx,
          `/repos/${ctx.params.owner}/${ctx.params.repo}/deployments/${ctx.params.id}/statuses`,
        );
      },
    },
    {
      method: 'POST',
      path: '/repos/:owner/:repo/deployments/:id/statuses',
      handle: ({ state, params, body }) => {
        const d = state.deployments.find((x) => x.id === num(params.id));
        if (!d) return notFound();
        const status = {
          id: state.nextId++,
          state: String(body?.state ?? ''),
          description: body?.description,
          environment_url: body?.environment_url,
          log_url: body?.log_url,
        };
        d.statuses.push(status);
        return { status: 201, body: status };
      },
    },
  ];
}

/** Matches `/a/:x/b/:rest*` against a path; `:name*` swallows the remaining segments. */
function matchPath(pattern: string, path: string): Record<string, string> | undefined {
  const p = pattern.split('/');
  const s = path.split('/');
  const params: Record<string, string> = {};
  for (let i = 0; i < p.length; i++) {
    const seg = p[i];
    if (seg.startsWith(':') && seg.endsWith('*')) {
      const rest = s.slice(i).map(decodeURIComponent).join('/');
      if (!rest) return undefined;
      params[seg.slice(1, -1)] = rest;
      return params;
    }
    if (i >= s.length) return undefined;
    if (seg.startsWith(':')) params[seg.slice(1)] = decodeURIComponent(s[i]);
    else if (seg !== s[i]) return undefined;
  }
  return p.length === s.length ? params : undefined;
}

/** Starts the fake API on 127.0.0.1 (random port). */
export async function startFakeGitHub(
  options: { owner?: string; repo?: string; routes?: Route[] } = {},
): Promise<FakeGitHub> {
  const initialState = (): FakeState => ({
    owner: options.owner ?? 'Codertocat',
    repo: options.repo ?? 'Hello-World',
    defaultBranch: 'main',
    readOnly: false,
    comments: new Map(),
    pulls: [],
    refs: new Map(),
    deployments: [],
    nextId: 1000,
  });
  const state: FakeState = initialState();
  const requests: RecordedRequest[] = [];
  // Extra routes first so tests can override a default one.
  const routes: Route[] = [...(options.routes ?? []), ...defaultRoutes()];
  let baseUrl = '';

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const parsed = new URL(req.url ?? '/', baseUrl);
      const method = req.method ?? 'GET';
      const text = Buffer.concat(chunks).toString('utf8');
      let body: any;
      try {
        body = text ? JSON.parse(text) : undefined;
      } catch {
        body = text;
      }
      const reply = (r: RouteReply) => {
        requests.push({ method, path: parsed.pathname, query: parsed.searchParams, body, status: r.status });
        res.writeHead(r.status, { 'content-type': 'application/json; charset=utf-8', ...r.headers });
        res.end(r.body === undefined ? '' : JSON.stringify(r.body));
      };
      if (state.readOnly && method !== 'GET') {
        reply({
          status: 403,
          body: {
            message: 'Resource not accessible by integration',
            documentation_url: 'https://docs.github.com/rest',
          },
        });
        return;
      }
      for (const route of routes) {
        if (route.method !== method) continue;
        const params = matchPath(route.path, parsed.pathname);
        if (!params) continue;
        try {
          reply(route.handle({ state, params, query: parsed.searchParams, body, url: baseUrl }));
        } catch (err) {
          reply({ status: 500, body: { message: String(err) } });
        }
        return;
      }
      reply({
        status: 404,
        body: { message: `Not Found: no fake route for ${method} ${parsed.pathname}`, status: '404' },
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  baseUrl = `http://127.0.0.1:${port}`;
  return {
    url: baseUrl,
    state,
    requests,
    routes,
    reset: () => {
      Object.assign(state, initialState());
      requests.length = 0;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err ? reject(err) : resolve()));
      }),
  };
}

/**
 * A `request(route, params)` client over the fake (the shape of the Octokit client the CLI
 * holds): path parameters fill the route, the rest go in the query (GET) or the JSON body; the
 * answer carries its headers (lower-case names, `link` among them), and an answer of 400 or more
 * throws with its `status` and `response`, as Octokit's RequestError does.
 */
export function fakeRequestClient(fake: FakeGitHub): {
  request(
    route: string,
    params?: Record<string, unknown>,
  ): Promise<{ status: number; headers: Record<string, string>; data: any }>;
} {
  return {
    async request(route, params) {
      const [method, tmpl] = route.split(' ');
      const p = { ...params };
      const url = tmpl!.replace(/\{(\w+)\}/g, (_, k: string) => {
        const v = String(p[k]);
        delete p[k];
        return v;
      });
      const query = method === 'GET' ? `?${new URLSearchParams(p as Record<string, string>)}` : '';
      const res = await fetch(`${fake.url}${url}${query}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'GET' ? undefined : JSON.stringify(p),
      });
      // 204 No Content (a delete) has no body to parse, as Octokit gives `data` undefined then.
      const text = await res.text();
      const data = text ? JSON.parse(text) : undefined;
      const headers = Object.fromEntries(res.headers);
      if (res.status >= 400)
        throw Object.assign(new Error(JSON.stringify(data)), {
          status: res.status,
          response: { status: res.status, headers, data },
        });
      return { status: res.status, headers, data };
    },
  };
}
