import canonicalizeImport from 'canonicalize';
import { describe, expect, it } from 'vitest';
import { canonicalJson, isCanonicalJson } from '../../src/audit/canonical-json.js';

// The RFC author's reference implementation, as the oracle.
const reference = ((canonicalizeImport as unknown as { default?: unknown }).default ?? canonicalizeImport) as (input: unknown) => string;

const samples: unknown[] = [
  { b: 1, a: [1.5, 'x', { d: null, c: 1e21 }] },
  { '€': 1, '\u0080': 2, '\ud83d\ude00': 3, a: 4, A: 5, '': 6 },
  { numbers: [0, -0, 1e-7, 123456789012345680000, 0.1 + 0.2, -1.5e-300, 2 ** 53] },
  { text: 'line\nbreak "quoted" \\ back \u0007 bell \u2028 sep é 中文' },
  { nested: { z: { y: { x: [true, false, null] } } }, empty: {}, list: [] },
  { type: 'job.released', actor: 'system', details: { outputHash: 'ab'.repeat(32), datasetVersions: { residents: 'cd'.repeat(32) } }, index: 42, at: '2026-01-01T00:00:00.000Z' },
];

describe('RFC 8785 canonical JSON', () => {
  it.each(samples.map((sample, index) => ({ sample, index })))('matches the reference implementation (sample $index)', ({ sample }) => {
    expect(canonicalJson(sample)).toBe(reference(sample));
  });

  it('refuses non-finite numbers', () => {
    expect(() => canonicalJson({ a: Number.NaN })).toThrow();
    expect(() => canonicalJson([Number.POSITIVE_INFINITY])).toThrow();
  });

  it('tells a canonical text from a reordered or re-spaced one', () => {
    const value = { b: 1, a: 2 };
    expect(isCanonicalJson('{"a":2,"b":1}', value)).toBe(true);
    expect(isCanonicalJson('{"b":1,"a":2}', value)).toBe(false);
    expect(isCanonicalJson('{"a": 2,"b":1}', value)).toBe(false);
  });
});
