import { compactVerify, createLocalJWKSet } from 'jose';
import { eq, inArray, sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAuditEvents, nextLeafIndex, numberAuditLeaves } from '../../src/audit/audit-log.js';
import { bulkInsert, rowsFor } from '../../src/db/bulk-insert.js';
import { leafHash } from '../../src/audit/merkle.js';
import { auditLeaves, consumerQuotas, principals } from '../../src/db/schema.js';
import { signWithPlatformKey } from '../../src/identity/keys.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform();
});
afterAll(() => t?.close());

describe('rows written through one JSON parameter', () => {
  it('keep leaf text byte for byte, so every stored hash still matches its leaf', async () => {
    const awkward = ['引号 "quoted" \\ back\\slash', 'tab\tnew\nline', 'emoji 🧾 and é', "it's", '\u2028 separator', '{"looks":"like json"}'];
    const at = new Date('2026-11-27T08:00:00.123Z');
    const indexes = await t.platform.db.transaction((tx) =>
      appendAuditEvents(tx as never, awkward.map((text, position) => ({ type: 'test.awkward', actor: 'system', operator: position % 2 ? null : 'op', datasets: position % 3 ? undefined : ['a', text], details: { text } })), at),
    );
    const rows = await t.platform.db.select().from(auditLeaves).where(inArray(auditLeaves.leafIndex, indexes));
    expect(rows).toHaveLength(awkward.length);
    for (const row of rows.sort((a, b) => a.leafIndex - b.leafIndex)) {
      const position = indexes.indexOf(row.leafIndex);
      expect(JSON.parse(row.leaf).details.text).toBe(awkward[position]);
      expect(leafHash(row.leaf).toString('hex')).toBe(row.leafHash);
      expect(row.operatorId).toBe(position % 2 ? null : 'op');
      expect(row.datasets).toEqual(position % 3 ? null : ['a', awkward[position]]);
      expect(row.createdAt.toISOString()).toBe(at.toISOString());
    }
  });

  it('run beside another data-modifying statement in one statement, all or nothing', async () => {
    await t.platform.db.insert(principals).values({ id: 'consumer-bulk', role: 'consumer', displayName: 'bulk' });
    const upsert = (calls: number) => sql`INSERT INTO ${consumerQuotas} (consumer_id, day, calls_today, product_calls_today, month, fees_this_month_fen)
      VALUES ('consumer-bulk', '2026-11-27', ${calls}, '{}'::jsonb, '2026-11', 0) ON CONFLICT (consumer_id) DO UPDATE SET calls_today = excluded.calls_today`;
    const [{ next }] = (await t.platform.db.select({ next: nextLeafIndex }).from(auditLeaves)) as [{ next: string }];
    const leaf = (type: string) => rowsFor(auditLeaves, numberAuditLeaves([{ type, actor: 'system' }], Number(next), new Date()));
    await bulkInsert(t.platform.db, leaf('test.with-upsert'), upsert(7));
    expect((await t.platform.db.select().from(consumerQuotas).where(eq(consumerQuotas.consumerId, 'consumer-bulk')))[0]?.callsToday).toBe(7);
    // The same leaf index again fails the whole statement: the upsert beside it does not land either.
    await expect(bulkInsert(t.platform.db, leaf('test.duplicate'), upsert(8))).rejects.toThrow();
    expect((await t.platform.db.select().from(consumerQuotas).where(eq(consumerQuotas.consumerId, 'consumer-bulk')))[0]?.callsToday).toBe(7);
  });

  it('take consecutive indexes across appends', async () => {
    const first = await t.platform.db.transaction((tx) => appendAuditEvents(tx as never, [{ type: 'test.one', actor: 'system' }], new Date()));
    const next = await t.platform.db.transaction((tx) => appendAuditEvents(tx as never, [{ type: 'test.two', actor: 'system' }, { type: 'test.three', actor: 'system' }], new Date()));
    expect(next).toEqual([first[0]! + 1, first[0]! + 2]);
  });
});

describe('platform signatures made with node:crypto', () => {
  it('verify with jose and the published JWKS alone, with the header naming key and type', async () => {
    const jws = signWithPlatformKey(t.platform.keys, 'pds-test+jws', { hello: '世界', n: 1 });
    const { payload, protectedHeader } = await compactVerify(jws, createLocalJWKSet(t.platform.keys.jwks() as never));
    expect(JSON.parse(new TextDecoder().decode(payload))).toEqual({ hello: '世界', n: 1 });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', kid: t.platform.keys.platform.kid, typ: 'pds-test+jws' });
  });
});
