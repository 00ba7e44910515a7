/**
 * Keeping the sticky comment under GitHub's size limit. GitHub counts a body's characters (code
 * points: an emoji is one, though JavaScript's `length` says two), and refuses a longer body with
 * 422. What does not fit is cut in whole parts, never inside a Mermaid fence, a table or a
 * `<details>`, and a line says what was left off. Pure string work.
 */
import { findSection, replaceSection, sectionMarkers, sectionNames } from './sections.ts';

/** GitHub rejects comment bodies longer than this many characters. */
export const GITHUB_COMMENT_LIMIT = 65_536;

/** The characters of `text` as GitHub counts them for its limit (code points). */
export function commentChars(text: string): number {
  let n = 0;
  for (const _ of text) n++;
  return n;
}

/**
 * `text` split at its blank lines that are outside code fences and `<details>` blocks: the
 * parts a cut may drop whole (a heading stays with the block after it). Joining them with a
 * blank line gives `text` back.
 */
export function splitBlocks(text: string): string[] {
  const blocks: string[] = [];
  let current: string[] = [];
  let fence = false;
  let depth = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '' && !fence && depth === 0) {
      if (current.length) blocks.push(current.join('\n'));
      current = [];
      continue;
    }
    current.push(line);
    if (/^\s*(```|~~~)/.test(line)) fence = !fence;
    if (!fence) {
      depth += (line.match(/<details>/g) ?? []).length;
      depth = Math.max(0, depth - (line.match(/<\/details>/g) ?? []).length);
    }
  }
  if (current.length) blocks.push(current.join('\n'));
  // A heading alone is one part with what follows it: a cut keeps or drops both.
  const parts: string[] = [];
  for (const block of blocks) {
    const last = parts[parts.length - 1];
    if (last !== undefined && /^#{1,6} [^\n]*$/.test(last)) parts[parts.length - 1] = `${last}\n\n${block}`;
    else parts.push(block);
  }
  return parts;
}

/** What a part is called in the "left off" line: its heading or `<details>` summary. */
export function blockName(block: string): string | undefined {
  const heading = /^#{1,6} +(.+)$/m.exec(block)?.[1];
  const summary = /<summary>(.*?)<\/summary>/.exec(block)?.[1];
  const name = (block.trimStart().startsWith('<details>') ? summary : heading) ?? heading ?? summary;
  return name?.replace(/[`*_]/g, '').trim().slice(0, 80) || undefined;
}

/** "A, B, C and 4 more parts" for the names of the parts left off. */
export function leftOffList(names: (string | undefined)[]): string {
  const named = [...new Set(names.filter((n): n is string => n !== undefined))];
  const unnamed = names.length - names.filter((n) => n !== undefined).length;
  const shown = named.slice(0, 6);
  const rest = named.length - shown.length + unnamed;
  const list = shown.join(', ');
  if (rest === 0) return list;
  const more = `${rest} ${shown.length ? 'more ' : ''}part${rest === 1 ? '' : 's'}`;
  return list ? `${list} and ${more}` : more;
}

/**
 * `blocks` joined by blank lines, keeping those that fit within `max` characters in order (a
 * part too long is dropped whole, later shorter ones may still fit), followed by `note(list)`
 * naming what was dropped when anything was. `keepFirst` parts are kept whatever their size.
 */
export function fitBlocks(
  blocks: string[],
  max: number,
  note: (leftOff: string) => string,
  keepFirst = 0,
): string {
  if (commentChars(blocks.join('\n\n')) <= max) return blocks.join('\n\n');
  // The longest the note can be: the longest names, and every part counted.
  const longest = blocks.map(blockName).sort((a, b) => (b?.length ?? 0) - (a?.length ?? 0));
  const worst = commentChars(note(leftOffList(longest))) + 2;
  let used = 0;
  const kept: string[] = [];
  const dropped: (string | undefined)[] = [];
  for (const [i, block] of blocks.entries()) {
    const size = commentChars(block) + (kept.length ? 2 : 0);
    if (i < keepFirst || used + size + worst <= max) {
      kept.push(block);
      used += size;
    } else dropped.push(blockName(block));
  }
  return [...kept, note(leftOffList(dropped))].join('\n\n');
}

export interface FitOptions {
  /** Characters at most (default {@link GITHUB_COMMENT_LIMIT}). */
  limit?: number;
  /**
   * Cut the part before the sections first, keeping the sections whole while that is enough
   * (the report's writer: its full text is in the job summary, the sections are other writers').
   * Default false: sections are left off first.
   */
  keepSections?: boolean;
}

/** The part of `text` before its first section cut to whole parts within `limit` (see fitComment). */
function cutHead(text: string, limit: number): string {
  const first = sectionNames(text)[0];
  const at = first === undefined ? text.length : text.indexOf(sectionMarkers(first)[0]);
  const tail = text.slice(at);
  const lines = text.slice(0, at).trimEnd().split('\n');
  const head = fitBlocks(
    [lines[0]!, ...splitBlocks(lines.slice(1).join('\n'))],
    limit - commentChars(tail) - 2,
    (list) => `_Cut at GitHub's comment size limit: left off: ${list}._`,
    1,
  );
  return tail ? `${head}\n\n${tail}` : head;
}

/**
 * `text` (a whole sticky comment) within the limit: when longer, the sections (./sections.ts)
 * are replaced, last first, by a line saying they were left off (their markers stay, so their
 * writer replaces them next time), and the part before the sections is cut to whole parts, its
 * first line (the comment's marker) always kept; which comes first is `keepSections`.
 */
export function fitComment(text: string, options: FitOptions = {}): string {
  const limit = options.limit ?? GITHUB_COMMENT_LIMIT;
  if (commentChars(text) <= limit) return text;
  let out = text;
  if (options.keepSections) {
    out = cutHead(out, limit);
    if (commentChars(out) <= limit) return out;
  }
  for (const name of sectionNames(text).reverse()) {
    if (!findSection(out, name)) continue;
    out = replaceSection(
      out,
      name,
      `_The ${name} section was left off: it did not fit GitHub's ${limit}-character comment limit._`,
    );
    if (commentChars(out) <= limit) return out;
  }
  return cutHead(out, limit);
}
