import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, cspHash, esc, jsonForScript, renderPage } from '../../lib/ui/html.ts';

describe('ui html', () => {
  it.each([
    ['<script>alert(1)</script>', '&lt;script&gt;alert(1)&lt;/script&gt;'],
    ['" onerror="x', '&quot; onerror=&quot;x'],
    ["a'b`c&d", 'a&#39;b&#96;c&amp;d'],
    [undefined, ''],
  ])('esc %j gives %j', (input, want) => {
    expect(esc(input)).toBe(want);
  });

  it('jsonForScript cannot close its script tag or open a comment, and parses back to the value', () => {
    const value = { s: '</script><script>alert(1)</script><!-- -->', t: ']]>&\u2028\u2029', n: [1, 2.5] };
    const text = jsonForScript(value);
    expect(text).not.toMatch(/<|>|&|\u2028|\u2029/);
    expect(text.toLowerCase()).not.toContain('</script');
    expect(JSON.parse(text)).toEqual(value);
  });

  it('renderPage allows its one script and style by hash, nothing inline by name, no framing', () => {
    const page = renderPage({ page: 'experiments', title: '<t>', body: '<p>x</p>', script: 'void 0;' });
    expect(page.csp).toContain(`script-src ${cspHash('void 0;')}`);
    expect(page.csp).toContain("default-src 'none'");
    expect(page.csp).toContain("frame-ancestors 'none'");
    expect(page.csp).not.toMatch(/unsafe-(inline|eval)/);
    // The meta form leaves out frame-ancestors, which browsers ignore there.
    const meta = page.csp.replace("; frame-ancestors 'none'", '');
    expect(page.html).toContain(`<meta http-equiv="Content-Security-Policy" content="${esc(meta)}">`);
    expect(page.html).toContain('<title>&lt;t&gt; · lockstep</title>');
    expect(contentSecurityPolicy('a')).toContain("script-src 'none'");
  });
});
