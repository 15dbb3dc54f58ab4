import { describe, expect, it } from 'vitest';
import { gatewayRetryDelayMs } from '../../src/products/client/verification-client.js';

const answer = (retryAfter?: string) => new Response('bad gateway', { status: 503, headers: retryAfter === undefined ? {} : { 'retry-after': retryAfter } });
const now = Date.parse('2026-11-28T12:00:00Z');

describe("a gateway's Retry-After", () => {
  it('in seconds is waited for', () => {
    expect(gatewayRetryDelayMs(answer('2'), 250, now)).toBe(2000);
  });

  it('as an HTTP date is waited for until that time', () => {
    expect(gatewayRetryDelayMs(answer('Sat, 28 Nov 2026 12:00:03 GMT'), 250, now)).toBe(3000);
  });

  it('is capped at five seconds', () => {
    expect(gatewayRetryDelayMs(answer('3600'), 250, now)).toBe(5000);
  });

  it('absent, unreadable or already past leaves the caller its own back-off', () => {
    expect(gatewayRetryDelayMs(answer(), 250, now)).toBe(250);
    expect(gatewayRetryDelayMs(answer('soon'), 250, now)).toBe(250);
    expect(gatewayRetryDelayMs(answer('Sat, 28 Nov 2026 11:00:00 GMT'), 250, now)).toBe(250);
    expect(gatewayRetryDelayMs(answer('0'), 250, now)).toBe(250);
  });
});
