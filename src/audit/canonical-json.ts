import crypto from 'node:crypto';

/**
 * RFC 8785 (JSON Canonicalization Scheme). The RFC defines number and string serialisation as ECMAScript's
 * JSON.stringify does them, so canonical JSON is JSON.stringify over a copy whose object keys are sorted by UTF-16
 * code units — which is also what Array.prototype.sort does by default. Non-finite numbers are refused, as the RFC
 * requires. Checked against the RFC author's reference implementation (the `canonicalize` package) in the tests;
 * this one is several times faster, which matters for a log of millions of leaves.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: unknown): unknown {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new TypeError('RFC 8785 has no form for NaN or Infinity');
    return value;
  }
  if (Array.isArray(value)) return value.map(sorted);
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return sorted((value as { toJSON: () => unknown }).toJSON());
  const result: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const entry = (value as Record<string, unknown>)[key];
    if (entry !== undefined) result[key] = sorted(entry);
  }
  return result;
}

/** The SHA-256 (hex) of a value's canonical JSON: the same request or content always hashes the same. */
export const canonicalSha256 = (value: unknown): string => crypto.hash('sha256', canonicalJson(value), 'hex');

/** Whether a text is the canonical form of the value it parses to. */
export function isCanonicalJson(text: string, parsed: unknown): boolean {
  try {
    return canonicalJson(parsed) === text;
  } catch {
    return false;
  }
}
