import { describe, expect, it } from 'vitest';
import { Base64Audio, HEAD, readPlainAudioBody } from '../../lib/serving/json-body.ts';
import { toneWav } from '../support/fixture-model.ts';

const b64 = toneWav(440, 0.05).toString('base64');

/**
 * What the fast path gives, as JSON.parse's result would be read: each Base64Audio as the head
 * and bytes of the string JSON.parse makes.
 */
function fast(body: string | Buffer): unknown {
  const parsed = readPlainAudioBody(Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8'));
  if (!parsed) return undefined;
  return {
    instances: parsed.instances.map(({ audio }) => {
      expect(audio).toBeInstanceOf(Base64Audio);
      return { audio: { head: audio.head, bytes: audio.bytes } };
    }),
  };
}

/** JSON.parse's result, each string read as the fast path reads it, or "throws". */
function full(body: string | Buffer): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : body);
  } catch {
    return 'throws';
  }
  const instances = (parsed as { instances?: { audio?: unknown }[] }).instances;
  if (!Array.isArray(instances)) return parsed;
  return {
    ...(parsed as object),
    instances: instances.map((inst) =>
      typeof inst?.audio === 'string'
        ? { ...inst, audio: { head: inst.audio.slice(0, HEAD), bytes: Buffer.from(inst.audio, 'base64') } }
        : inst,
    ),
  };
}

/** The fast path either leaves the body to JSON.parse or gives what JSON.parse gives. */
function expectSameOrLeft(body: string | Buffer) {
  const got = fast(body);
  if (got !== undefined) expect(got).toStrictEqual(full(body));
  return got;
}

/** A xorshift generator: the same cases on every run. */
function seeded(seed: number) {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

describe('serving json body', () => {
  it.each([
    ['compact', `{"instances":[{"audio":"${b64}"}]}`],
    ['JSON.stringify', JSON.stringify({ instances: [{ audio: b64 }] })],
    ['whitespace everywhere', ` \n\t{ \r\n"instances" :\t[ { "audio"\n:\r"${b64}" } ] }\n `],
    ['several instances', `{"instances": [{"audio": "${b64}"}, {"audio": "QUJD"} ,{"audio":"QUI="}]}`],
    ['empty string', '{"instances":[{"audio":""}]}'],
    ['one padding byte', '{"instances":[{"audio":"QUI="}]}'],
    ['two padding bytes', '{"instances":[{"audio":"QQ=="}]}'],
    ['url-safe characters', '{"instances":[{"audio":"-_-_"}]}'],
    ['trailing bits set', '{"instances":[{"audio":"QR=="}]}'],
  ])('json body reads the plain shape (%s) as JSON.parse does, each audio string decoded', (_n, body) => {
    const got = fast(body);
    expect(got).toBeDefined();
    expect(got).toStrictEqual(full(body));
    expect(full(body)).not.toBe('throws');
  });

  it.each([
    ['escaped slash', `{"instances":[{"audio":"${b64.replace('/', '\\/')}"}]}`],
    ['unicode escape in the string', '{"instances":[{"audio":"\\u0051UJD"}]}'],
    ['escaped quote', '{"instances":[{"audio":"QU\\"JD"}]}'],
    ['unicode escape in a key', `{"instances":[{"\\u0061udio":"${b64}"}]}`],
    ['extra instance key', `{"instances":[{"audio":"${b64}","features":[1]}]}`],
    ['extra top-level key before', `{"id":1,"instances":[{"audio":"${b64}"}]}`],
    ['extra top-level key after', `{"instances":[{"audio":"${b64}"}],"parameters":{}}`],
    ['duplicate instance key', `{"instances":[{"audio":"QUJD","audio":"${b64}"}]}`],
    ['duplicate top-level key', `{"instances":[{"audio":"QUJD"}],"instances":[{"audio":"${b64}"}]}`],
    ['byte order mark', `\uFEFF{"instances":[{"audio":"${b64}"}]}`],
    ['features instance', '{"instances":[{"features":[1,2]}]}'],
    ['audio after features', `{"instances":[{"features":[1,2]},{"audio":"${b64}"}]}`],
    ['number audio', '{"instances":[{"audio":12}]}'],
    ['null audio', '{"instances":[{"audio":null}]}'],
    ['empty instances', '{"instances":[]}'],
    ['raw newline in the string', '{"instances":[{"audio":"QU\nJD"}]}'],
    ['raw tab in the string', '{"instances":[{"audio":"QU\tJD"}]}'],
    ['raw NUL in the string', '{"instances":[{"audio":"QU\u0000JD"}]}'],
    ['space in the string', '{"instances":[{"audio":"QU JDQUJD"}]}'],
    ['multi-byte character in the string', '{"instances":[{"audio":"QUé="}]}'],
    ['inner padding', '{"instances":[{"audio":"QQ==QUJD"}]}'],
    ['three padding bytes', '{"instances":[{"audio":"Q==="}]}'],
    ['only padding', '{"instances":[{"audio":"===="}]}'],
    ['length not a multiple of 4', '{"instances":[{"audio":"QUJ"}]}'],
    ['not base64', '{"instances":[{"audio":"hello world!"}]}'],
    ['trailing comma', `{"instances":[{"audio":"${b64}"},]}`],
    ['trailing bytes', `{"instances":[{"audio":"${b64}"}]}x`],
    ['two bodies', `{"instances":[{"audio":"QUJD"}]}{"instances":[]}`],
    ['truncated', `{"instances":[{"audio":"${b64}`],
    ['unterminated', `{"instances":[{"audio":"${b64}"}]`],
    ['empty', ''],
    ['key with a space', `{"instances":[{"audio ":"${b64}"}]}`],
    ['uppercase key', `{"Instances":[{"audio":"${b64}"}]}`],
    ['array body', `[{"audio":"${b64}"}]`],
  ])('json body leaves any other body (%s) to JSON.parse', (_n, body) => {
    expect(fast(body)).toBeUndefined();
  });

  it('json body gives what JSON.parse gives, or leaves the body, with any byte inside the audio string', () => {
    let taken = 0;
    for (let byte = 0; byte < 256; byte++) {
      for (const at of [0, 1, 2, 3, 7]) {
        const s = Buffer.from('QUJDQUJD', 'latin1');
        s[at] = byte;
        const body = Buffer.concat([Buffer.from('{"instances":[{"audio":"'), s, Buffer.from('"}]}')]);
        if (expectSameOrLeft(body)) taken++;
      }
    }
    // The 64 base64 characters and the url-safe '-' and '_' everywhere, '=' only at the end.
    expect(taken).toBe(66 * 5 + 1);
  });

  it('json body gives what JSON.parse gives, or leaves the body, for mutated bodies (seeded)', () => {
    const random = seeded(14);
    const pick = (s: string) => s[Math.floor(random() * s.length)]!;
    const alphabet = '{}[]":, \n\t\\/=+-_uAQZaz09é\u0000';
    const base = `{"instances": [{"audio": "${b64.slice(0, 40)}"}, {"audio": "QUI="}]}`;
    let taken = 0;
    let left = 0;
    for (let c = 0; c < 3000; c++) {
      let body = base;
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) {
        const at = Math.floor(random() * body.length);
        const op = random();
        if (op < 0.4) body = body.slice(0, at) + pick(alphabet) + body.slice(at + 1);
        else if (op < 0.7) body = body.slice(0, at) + pick(alphabet) + body.slice(at);
        else body = body.slice(0, at) + body.slice(at + 1);
      }
      if (expectSameOrLeft(body)) taken++;
      else left++;
    }
    // Both ways are exercised: many mutations keep the plain shape, most break it.
    expect(taken).toBeGreaterThan(100);
    expect(left).toBeGreaterThan(1000);
  });

  it('json body decodes a string longer than its pieces as Buffer.from decodes it whole', () => {
    // Several 16 KB pieces, padding in the last one, and a bad character in a middle one.
    const long = toneWav(440, 1.3).toString('base64');
    expect(long.length).toBeGreaterThan(3 * 16 * 1024);
    for (const s of [long, long.slice(0, -2) + '==', long.slice(0, 12_001 * 4) + 'QQ==']) {
      const body = `{"instances":[{"audio":"${s}"}]}`;
      expect(fast(body), `${s.length}`).toStrictEqual(full(body));
    }
    for (const at of [16 * 1024 - 1, 16 * 1024, 40_000]) {
      const bad = `${long.slice(0, at)}*${long.slice(at + 1)}`;
      expect(fast(`{"instances":[{"audio":"${bad}"}]}`), `${at}`).toBeUndefined();
      const inner = `${long.slice(0, at)}=${long.slice(at + 1)}`;
      expect(fast(`{"instances":[{"audio":"${inner}"}]}`), `${at}`).toBeUndefined();
    }
  });
});
