import crypto from 'node:crypto';
import { and, asc, desc, eq, notInArray, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Database } from '../db/connect.js';
import { heKeys } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import { fromBase64 } from './client/bfv.js';
import type { SealEvaluator } from './seal-evaluator.js';

/**
 * Registered public keys for encrypted calls. A seeded public key is ~320 KiB, as large as the ciphertext it
 * travels with; a consumer that calls often registers its key once (`POST /v1/he-keys`) and names it by id, which
 * nearly halves every encrypted request. A registered key is the consumer's own: another consumer naming it is
 * told it was not found. It is checked in the SEAL thread when registered, exactly as an inline key is, and
 * loaded and checked again at every call, so a stored key is never trusted more than a sent one.
 */
// Padded base64 only: its length is a multiple of four. Text of another length cannot be decoded (atob throws),
// and that must be the caller's 400, not the server's 500.
export const base64Text = z
  .string()
  .max(2_000_000)
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, 'must be base64')
  .refine((text) => text.length % 4 === 0, 'must be padded base64 (a length that is a multiple of 4)');
export const heKeyRegistrationSchema = z.strictObject({
  scheme: z.enum(['bfv', 'ckks']).describe('bfv for verification products, ckks for scoring products'),
  publicKey: base64Text.describe('The seeded, uncompressed public key (he-params gives its exact size), base64'),
});
export type HeKeyRow = typeof heKeys.$inferSelect;

/** Registered keys kept per consumer and scheme: a few clients at once (servers, browser sign-ins). */
export const keysKeptPerScheme = 5;

export const toHeKeyView = (row: HeKeyRow) => ({ id: row.id, scheme: row.scheme, sha256: row.sha256, createdAt: row.createdAt.toISOString() });

/** A key as a call uses it: its bytes, and the hash of its base64 text that the call's request hash carries. */
export type ResolvedKey = { bytes: Uint8Array; sha256: string };

export function createHeKeyStore(deps: { db: Database; clock: () => Date; sealEvaluator: SealEvaluator }) {
  // Decoded keys of recent callers. A key never changes once stored, but it can be forgotten, by any API process
  // (forgetAllButNewest): a cached key is used only once a primary-key read has found it still registered.
  const recent = new Map<string, HeKeyRow & { bytes: Uint8Array }>();
  const stillRegistered = deps.db.select({ id: heKeys.id }).from(heKeys).where(eq(heKeys.id, sql.placeholder('id'))).prepare('he_key_still_registered');
  const remember = (row: HeKeyRow) => {
    const entry = { ...row, bytes: fromBase64(row.publicKey) };
    recent.delete(row.id);
    recent.set(row.id, entry);
    if (recent.size > 64) recent.delete(recent.keys().next().value!);
    return entry;
  };

  /**
   * A client makes a key pair per process or browser sign-in, so registrations accumulate; each consumer keeps its
   * newest few per scheme (320 KiB each). A call naming a forgotten key is answered 404, and the client library
   * registers its key again and resends.
   */
  async function forgetAllButNewest(principalId: string, scheme: 'bfv' | 'ckks'): Promise<void> {
    const kept = deps.db.select({ id: heKeys.id }).from(heKeys).where(and(eq(heKeys.principalId, principalId), eq(heKeys.scheme, scheme))).orderBy(desc(heKeys.createdAt), desc(heKeys.id)).limit(keysKeptPerScheme);
    const forgotten = await deps.db
      .delete(heKeys)
      .where(and(eq(heKeys.principalId, principalId), eq(heKeys.scheme, scheme), notInArray(heKeys.id, kept)))
      .returning({ id: heKeys.id });
    for (const { id } of forgotten) recent.delete(id);
  }

  return {
    /** Registers a key (idempotent: the same key again answers the first registration, `created: false`). */
    async register(principal: PrincipalRow, input: z.infer<typeof heKeyRegistrationSchema>): Promise<{ row: HeKeyRow; created: boolean }> {
      if (principal.role !== 'consumer') throw new AppError('FORBIDDEN', 'consumers register keys for their encrypted calls');
      const sha256 = crypto.hash('sha256', input.publicKey, 'hex');
      const existing = await deps.db.select().from(heKeys).where(and(eq(heKeys.principalId, principal.id), eq(heKeys.sha256, sha256)));
      if (existing[0]) return { row: existing[0], created: false };
      await deps.sealEvaluator.checkKey(input.scheme, fromBase64(input.publicKey));
      const [row] = await deps.db
        .insert(heKeys)
        .values({ id: `hek_${crypto.randomUUID()}`, principalId: principal.id, scheme: input.scheme, publicKey: input.publicKey, sha256, createdAt: deps.clock() })
        .onConflictDoNothing()
        .returning();
      if (row) {
        await forgetAllButNewest(principal.id, input.scheme);
        return { row, created: true };
      }
      // Registered by a concurrent call of the same consumer a moment ago.
      const [raced] = await deps.db.select().from(heKeys).where(and(eq(heKeys.principalId, principal.id), eq(heKeys.sha256, sha256)));
      return { row: raced!, created: false };
    },

    async list(principal: PrincipalRow): Promise<HeKeyRow[]> {
      return deps.db.select().from(heKeys).where(eq(heKeys.principalId, principal.id)).orderBy(asc(heKeys.createdAt));
    },

    /** The caller's key under this id for this scheme; anyone else's, or none, is not found (404). */
    async resolve(principal: PrincipalRow, id: string, scheme: 'bfv' | 'ckks'): Promise<ResolvedKey> {
      let entry = recent.get(id);
      // An encrypted call takes tens of milliseconds of SEAL work; this read costs well under one.
      if (entry && (await stillRegistered.execute({ id })).length === 0) {
        recent.delete(id);
        entry = undefined;
      } else if (!entry) {
        const [row] = await deps.db.select().from(heKeys).where(eq(heKeys.id, id));
        if (row) entry = remember(row);
      }
      if (!entry || entry.principalId !== principal.id) throw notFound('registered key');
      if (entry.scheme !== scheme) throw new AppError('VALIDATION_FAILED', `this key is a ${entry.scheme} key; this product takes ${scheme}`, [{ path: 'keyId', problem: `is a ${entry.scheme} key` }]);
      return { bytes: entry.bytes, sha256: entry.sha256 };
    },
  };
}

export type HeKeyStore = ReturnType<typeof createHeKeyStore>;
