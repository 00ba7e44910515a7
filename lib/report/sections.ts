/**
 * Named sections of the one sticky PR comment, each between its own hidden markers, so two
 * workflows can share the comment: the PR workflow rewrites the report and keeps the
 * Experiments section; the experiments workflow rewrites only that section. Pure string work.
 */

/** The start and end markers of section `name`. */
export function sectionMarkers(name: string): [start: string, end: string] {
  return [`<!-- lockstep-section:${name} -->`, `<!-- /lockstep-section:${name} -->`];
}

/** `body` between the markers of section `name`. */
export function wrapSection(name: string, body: string): string {
  const [start, end] = sectionMarkers(name);
  return `${start}\n${body.trim()}\n${end}`;
}

/** The whole wrapped section `name` in `text` (markers included), or undefined. */
export function findSection(text: string, name: string): string | undefined {
  const [start, end] = sectionMarkers(name);
  const i = text.indexOf(start);
  if (i < 0) return undefined;
  const j = text.indexOf(end, i + start.length);
  if (j < 0) return undefined;
  return text.slice(i, j + end.length);
}

/** Every section name in `text`, in order. */
export function sectionNames(text: string): string[] {
  return [...text.matchAll(/<!-- lockstep-section:([\w-]+) -->/g)].map((m) => m[1]!);
}

/**
 * `text` with section `name` replaced by `body` (appended when absent). A start marker without
 * its end (a hand-edited comment) is dropped with everything after it, so the result always has
 * exactly one well-formed section `name`.
 */
export function replaceSection(text: string, name: string, body: string): string {
  const wrapped = wrapSection(name, body);
  const existing = findSection(text, name);
  if (existing) return text.replace(existing, () => wrapped);
  const [start] = sectionMarkers(name);
  const cut = text.indexOf(start);
  const head = (cut >= 0 ? text.slice(0, cut) : text).trimEnd();
  return `${head}\n\n${wrapped}\n`;
}

/** `next` with every section of `previous` that `next` lacks carried over (in their order). */
export function carrySections(previous: string, next: string): string {
  let out = next;
  for (const name of sectionNames(previous)) {
    if (findSection(out, name)) continue;
    const section = findSection(previous, name);
    if (section) out = `${out.trimEnd()}\n\n${section}\n`;
  }
  return out;
}
