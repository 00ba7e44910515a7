/**
 * Container image references. Vertex AI model versions and jobs run the one lockstep image by
 * digest (`<registry>/<path>@sha256:<64 hex>`), never by a mutable tag, so "which container
 * served this model" has one answer. The digest comes from the policy's `endpoint.image`, or from
 * the image build of the same workflow run (`LOCKSTEP_IMAGE`, set by deploy.yml from
 * docker/build-push-action's digest output).
 */
import { ConfigError } from './errors.ts';

/** The variable deploy.yml sets to the image it built and pushed (`<repository>@sha256:...`). */
export const IMAGE_ENV = 'LOCKSTEP_IMAGE';

export interface ImageRef {
  /** Registry and path, without tag or digest (`us-docker.pkg.dev/p/r/lockstep`). */
  repository: string;
  tag?: string;
  /** `sha256:<64 hex>` */
  digest?: string;
}

/** Splits `repository[:tag][@digest]`; undefined when it is not an image reference. */
export function parseImageRef(ref: string): ImageRef | undefined {
  const m = /^([a-z0-9][a-z0-9._/:-]*?)(?::([\w][\w.-]{0,127}))?(?:@(sha256:[0-9a-f]{64}))?$/.exec(ref);
  if (!m || /\/$|\/\//.test(m[1])) return undefined;
  return { repository: m[1], ...(m[2] ? { tag: m[2] } : {}), ...(m[3] ? { digest: m[3] } : {}) };
}

/** True when `ref` names an image by sha256 digest. */
export function isPinnedImage(ref: string): boolean {
  return parseImageRef(ref)?.digest !== undefined;
}

/**
 * The digest-pinned image a Vertex AI deploy or job uses: `LOCKSTEP_IMAGE` when set (the image
 * this run built), else the configured one. A reference without a digest is a one-line error
 * naming `where` (e.g. `promotion/prod.yaml: endpoint.image`).
 */
export function pinnedImage(configured: string, where: string, env: NodeJS.ProcessEnv = process.env): string {
  const built = env[IMAGE_ENV]?.trim();
  if (built) {
    if (!isPinnedImage(built))
      throw new ConfigError(
        `${IMAGE_ENV}: image not pinned by digest "${built}". Set it to <repository>@sha256:<digest> (docker/build-push-action's digest output).`,
      );
    return built;
  }
  if (!isPinnedImage(configured))
    throw new ConfigError(
      `${where}: image not pinned by digest "${configured}". Use <repository>@sha256:<digest> (deploy.yml's image build prints it), or set ${IMAGE_ENV}.`,
    );
  return configured;
}

/**
 * Model version labels carrying the image digest (label values hold at most 63 characters, so
 * the 64 hex digits are split in two, like the model hash labels).
 */
export function imageDigestLabels(image: string): Record<string, string> {
  const hex = parseImageRef(image)?.digest?.slice('sha256:'.length);
  return hex ? { 'lockstep-image-a': hex.slice(0, 32), 'lockstep-image-b': hex.slice(32) } : {};
}
