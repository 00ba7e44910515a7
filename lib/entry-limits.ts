/**
 * The limits on a relative entry path, without the schema that checks them (lib/entry-path.ts):
 * code that only walks files (a no-op status) reads these without loading zod.
 */

/** Longest accepted path, in UTF-8 bytes (well under PATH_MAX, leaving room for the repository). */
export const MAX_PATH_BYTES = 1024;
/** Longest accepted segment, in UTF-8 bytes (NAME_MAX on common filesystems). */
export const MAX_SEGMENT_BYTES = 255;
/** Deepest accepted nesting, in segments. */
export const MAX_DEPTH = 64;
