import { describe, expect, it } from 'vitest';
import { createIdempotentCalls } from '../../src/products/idempotent-calls.js';

// Plain names stand in for the keyed hashes the platform makes (call-replays.ts); this file tests the memory.
const retryKey = (consumerId: string, key: string, request: unknown) => ({ consumerId, keyHash: `${consumerId}/${key}`, requestHash: JSON.stringify(request) });
const createCalls = (options: { clock: () => Date; maxEntries?: number; maxBytes?: number }) => createIdempotentCalls({ ...options, retryKey });
/** A call answered afresh with `value`. */
const fresh = <T>(value: () => T | Promise<T>) => async () => ({ answer: await value(), replayed: false });

describe('answers kept for retried product calls', () => {
  it('a key is answered again within a day and called afresh after it', async () => {
    let now = Date.parse('2026-11-27T08:00:00Z');
    const calls = createCalls({ clock: () => new Date(now) });
    let made = 0;
    const call = fresh(() => ++made);
    expect((await calls.run('bank', 'k', { a: 1 }, call)).answer).toBe(1);
    now += 23 * 3_600_000;
    expect(await calls.run('bank', 'k', { a: 1 }, call)).toEqual({ answer: 1, replayed: true });
    now += 2 * 3_600_000;
    expect(await calls.run('bank', 'k', { a: 1 }, call)).toEqual({ answer: 2, replayed: false });
  });

  it('keys are per consumer', async () => {
    const calls = createCalls({ clock: () => new Date() });
    await calls.run('bank-a', 'k', { a: 1 }, fresh(() => 'a'));
    expect(await calls.run('bank-b', 'k', { a: 2 }, fresh(() => 'b'))).toEqual({ answer: 'b', replayed: false });
  });

  it('a failed call is not kept, so its retry is made again', async () => {
    const calls = createCalls({ clock: () => new Date() });
    await expect(calls.run('bank', 'k', {}, fresh(() => Promise.reject(new Error('quota'))))).rejects.toThrow('quota');
    expect(await calls.run('bank', 'k', {}, fresh(() => 'second'))).toEqual({ answer: 'second', replayed: false });
  });

  it('holds at most its byte bound of answers, the oldest leaving first', async () => {
    const calls = createCalls({ clock: () => new Date(), maxBytes: 2_500 });
    const answer = (key: string) => fresh(() => ({ key, ciphertext: 'x'.repeat(1_000) }));
    for (const key of ['k1', 'k2', 'k3']) await calls.run('bank', key, {}, answer(key));
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls.bytes).toBeLessThanOrEqual(2_500);
    expect((await calls.run('bank', 'k1', {}, answer('k1'))).replayed).toBe(false);
    expect((await calls.run('bank', 'k3', {}, answer('k3'))).replayed).toBe(true);
  });

  it('holds at most its bound, the oldest keys leaving first', async () => {
    const calls = createCalls({ clock: () => new Date(), maxEntries: 3 });
    for (const key of ['k1', 'k2', 'k3', 'k4']) await calls.run('bank', key, {}, fresh(() => key));
    expect(calls.size).toBe(3);
    expect((await calls.run('bank', 'k1', {}, fresh(() => 'again'))).replayed).toBe(false);
    expect((await calls.run('bank', 'k4', {}, fresh(() => 'again'))).replayed).toBe(true);
  });
});
