/**
 * Repository configuration: `.lockstep/config.yaml` (committed) overlaid by
 * `.lockstep/config.local.yaml` (git-ignored), both parsed by one schema. `LOCKSTEP_REMOTE`
 * overrides the default remote's URL.
 */
import path from 'node:path';
import { z } from 'zod';
import type { Repo } from './repo.ts';
import { parseYamlSource, readConfigText, validateYaml } from './yaml-source.ts';
import { computeSchema } from './compute-schema.ts';

/** A Vertex AI Experiments name: what the console lists (a Metadata context id). */
const experimentNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lower-case letters, digits and -, at most 64 characters');

export const vertexConfigSchema = z
  .object({
    project: z.string().min(1),
    region: z.string().min(1).default('us-central1'),
    /**
     * Vertex AI Experiments experiment: each pipeline run, `exp run` and tune trial becomes a run
     * of it (params, final metrics, per-epoch curves). Unset: nothing is logged.
     */
    experiment: experimentNameSchema.optional(),
  })
  .strict();

export type VertexConfig = z.infer<typeof vertexConfigSchema>;

/** How `lockstep add` puts a file's bytes into the cache (DVC's `cache.type`). */
export const cacheLinkSchema = z.enum(['reflink', 'hardlink', 'copy']);

/** What a bad `cache.type` is told (symlink, DVC's fourth type, is the likely mistake). */
const CACHE_TYPE_HINT =
  'expected reflink, hardlink or copy, or a non-empty list of them (symlink is not supported: use hardlink)';
export type CacheLink = z.infer<typeof cacheLinkSchema>;

export const cacheConfigSchema = z
  .object({
    /**
     * Ways to try, in order, the first the file system supports winning (default
     * `[reflink, copy]`). `hardlink` makes the workspace file and the cache object one read-only
     * file: nothing is copied, and an edit in place would change the object.
     */
    type: z
      .union(
        [
          cacheLinkSchema,
          z
            .array(cacheLinkSchema)
            .refine((types) => types.length > 0, { error: CACHE_TYPE_HINT })
            .meta({ minItems: 1 }),
        ],
        { error: CACHE_TYPE_HINT },
      )
      .optional(),
  })
  .strict();

export const configSchema = z
  .object({
    /** Name of the default remote (a key of `remotes`). */
    remote: z.string().min(1).optional(),
    remotes: z
      .record(
        z.string(),
        z
          .object({
            url: z.string().min(1),
            /** GCS: the storage API endpoint (an emulator, a private or regional endpoint), like
             * DVC's `endpointurl`; passed to the client as `apiEndpoint`. */
            endpoint: z
              .string()
              .regex(/^https?:\/\/[^/\s?#]+\/?$/, 'expected http(s)://host[:port] with no path')
              .optional(),
          })
          .strict(),
      )
      .default({}),
    /** Vertex AI as the team sees it in the console (nothing is called without it). */
    vertex: vertexConfigSchema.optional(),
    /** Where stages compute (lib/compute-schema.ts); not part of any stage's identity. */
    compute: computeSchema.optional(),
    /** The local cache. */
    cache: cacheConfigSchema.optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/** JSON Schema of the config file, for editors. */
export function configJsonSchema(): unknown {
  return z.toJSONSchema(configSchema);
}

function readOne(file: string, shown: string): Config {
  const text = readConfigText(file, shown);
  if (text === undefined) return { remotes: {} };
  const parsed = parseYamlSource(text, shown);
  return validateYaml({ ...parsed, value: parsed.value ?? {} }, configSchema, {
    // A cache.type problem carries its own fix; the remotes hint would only mislead there.
    suffixAt: (at) =>
      at[0] === 'cache' ? '' : ' (expected `remote: <name>` and `remotes: {<name>: {url: ...}}`)',
  });
}

/** The merged configuration (local file wins per key). */
export function readConfig(repo: Repo): Config {
  const committed = readOne(repo.configPath, '.lockstep/config.yaml');
  const local = readOne(path.join(repo.stateDir, 'config.local.yaml'), '.lockstep/config.local.yaml');
  return {
    remote: local.remote ?? committed.remote,
    remotes: { ...committed.remotes, ...local.remotes },
    ...(local.vertex || committed.vertex ? { vertex: local.vertex ?? committed.vertex } : {}),
    ...(local.cache || committed.cache ? { cache: { ...committed.cache, ...local.cache } } : {}),
    ...(committed.compute || local.compute
      ? {
          compute: {
            ...committed.compute,
            ...local.compute,
            stages: { ...committed.compute?.stages, ...local.compute?.stages },
          },
        }
      : {}),
  };
}
