import { and, asc, eq, isNull } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { principals, publicInterestGrants } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';

/**
 * Public-interest standing of consumers. Public-interest calls are free (policies/pricing.yaml), so the use a
 * call states must be backed by a regulator's grant: a consumer without one that says "public_interest" is
 * refused, before any quota is spent. Grants name their basis and end; revoking keeps the row (and the leaf).
 */
export type PublicInterestGrant = typeof publicInterestGrants.$inferSelect;

export const publicInterestGrantSchema = z.strictObject({
  basis: z.string().min(1).max(2000),
  validUntil: z.iso.datetime({ offset: true }),
});

export const grantInForce = (grant: PublicInterestGrant | undefined, now: Date): boolean =>
  Boolean(grant && !grant.revokedAt && grant.validUntil > now && grant.grantedAt <= now);

export async function grantPublicInterest(db: Database, consumerId: string, input: z.infer<typeof publicInterestGrantSchema>, regulatorId: string, now: Date): Promise<PublicInterestGrant> {
  const validUntil = new Date(input.validUntil);
  if (validUntil <= now) throw new AppError('VALIDATION_FAILED', 'a grant must end in the future', [{ path: 'validUntil', problem: 'is not in the future' }]);
  return db.transaction(async (tx) => {
    const [consumer] = await tx.select().from(principals).where(eq(principals.id, consumerId));
    if (!consumer || consumer.role !== 'consumer') throw notFound('consumer');
    const values = { basis: input.basis, grantedBy: regulatorId, grantedAt: now, validUntil, revokedAt: null };
    const [grant] = await tx
      .insert(publicInterestGrants)
      .values({ consumerId, ...values })
      .onConflictDoUpdate({ target: publicInterestGrants.consumerId, set: values })
      .returning();
    await appendAuditEvents(tx as never, [{ type: 'consumer.public-interest-granted', actor: regulatorId, details: { consumer: consumerId, basis: input.basis, validUntil: validUntil.toISOString() } }], now);
    return grant!;
  });
}

export async function revokePublicInterest(db: Database, consumerId: string, reason: string, regulatorId: string, now: Date): Promise<PublicInterestGrant> {
  return db.transaction(async (tx) => {
    const [grant] = await tx
      .update(publicInterestGrants)
      .set({ revokedAt: now })
      .where(and(eq(publicInterestGrants.consumerId, consumerId), isNull(publicInterestGrants.revokedAt)))
      .returning();
    if (!grant) {
      const [existing] = await tx.select().from(publicInterestGrants).where(eq(publicInterestGrants.consumerId, consumerId));
      throw existing ? new AppError('INVALID_TRANSITION', 'this grant is already revoked') : notFound('public-interest grant');
    }
    await appendAuditEvents(tx as never, [{ type: 'consumer.public-interest-revoked', actor: regulatorId, details: { consumer: consumerId, reason } }], now);
    return grant;
  });
}

export const publicInterestView = (grant: PublicInterestGrant, now: Date) => ({
  consumerId: grant.consumerId,
  basis: grant.basis,
  grantedBy: grant.grantedBy,
  grantedAt: grant.grantedAt.toISOString(),
  validUntil: grant.validUntil.toISOString(),
  revokedAt: grant.revokedAt?.toISOString() ?? null,
  inForce: grantInForce(grant, now),
});

export async function findPublicInterestGrant(db: Database, consumerId: string): Promise<PublicInterestGrant | undefined> {
  const [grant] = await db.select().from(publicInterestGrants).where(eq(publicInterestGrants.consumerId, consumerId));
  return grant;
}

/** Every consumer with its grant, if any (the regulators' list). */
export async function consumersWithStanding(db: Database, now: Date) {
  const rows = await db
    .select({ consumer: principals, grant: publicInterestGrants })
    .from(principals)
    .leftJoin(publicInterestGrants, eq(publicInterestGrants.consumerId, principals.id))
    .where(eq(principals.role, 'consumer'))
    .orderBy(asc(principals.id));
  return rows.map(({ consumer, grant }) => ({ id: consumer.id, displayName: consumer.displayName, status: consumer.status, publicInterest: grant ? publicInterestView(grant, now) : null }));
}
