import { asc, eq } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents, type AuditEvent } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { principalRoles, principals } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';

export type PrincipalRow = typeof principals.$inferSelect;

export const principalCreationSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z][a-z0-9-]{2,62}$/, 'must be lower-case letters, digits and dashes, 3 to 63 characters'),
    role: z.enum(principalRoles),
    displayName: z.string().min(1).max(200),
    operatorId: z.string().min(1).optional(),
    institutionId: z.string().min(1).optional(),
  })
  .refine((p) => (p.role === 'operator') === Boolean(p.operatorId), {
    path: ['operatorId'],
    message: 'is required for operator users and only for them',
  })
  .refine((p) => (p.role === 'institution') === Boolean(p.institutionId), {
    path: ['institutionId'],
    message: 'is required for institution users and only for them',
  });

export async function findPrincipal(db: Database, id: string): Promise<PrincipalRow | undefined> {
  const [row] = await db.select().from(principals).where(eq(principals.id, id));
  return row;
}

/** The audit event of a principal's creation (also written by the demo seed). */
export const principalCreatedEvent = (principal: Pick<PrincipalRow, 'id' | 'role' | 'operatorId' | 'institutionId'>, actor: string): AuditEvent => ({
  type: 'principal.created',
  actor,
  operator: principal.operatorId,
  details: { principal: principal.id, role: principal.role, institution: principal.institutionId },
});

/** Creates a principal and records who did, in the audit log, in one transaction. */
export async function createPrincipal(db: Database, input: z.infer<typeof principalCreationSchema>, createdBy: string, now: Date = new Date()): Promise<PrincipalRow> {
  return db.transaction(async (tx) => {
    const inserted = await tx
      .insert(principals)
      .values({ ...input, operatorId: input.operatorId ?? null, institutionId: input.institutionId ?? null, createdAt: now })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 0) throw new AppError('CONFLICT', `a principal with id ${input.id} exists`);
    await appendAuditEvents(tx, [principalCreatedEvent(inserted[0]!, createdBy)], now);
    return inserted[0]!;
  });
}

export const principalStatusChangeSchema = z.strictObject({
  status: z.enum(['active', 'disabled']),
  reason: z.string().min(1).max(2000),
});

/**
 * Disables an account (someone left, a token leaked) or enables it again, with the admin's reason, under the row's
 * lock, recorded in the audit log in the same transaction. Disabling also revokes every token issued until then:
 * they stay refused after the account is enabled again, so a leaked token does not come back to life; the holder
 * gets a new one. Asking for the status the account already has changes and records nothing. Nobody disables
 * their own account (a last admin could lock everyone out).
 */
export async function changePrincipalStatus(
  db: Database,
  principalId: string,
  change: z.infer<typeof principalStatusChangeSchema>,
  actor: string,
  now: Date = new Date(),
): Promise<PrincipalRow> {
  if (principalId === actor && change.status === 'disabled') throw new AppError('SELF_DISABLE', 'nobody disables their own account; another admin does');
  return db.transaction(async (tx) => {
    const [principal] = await tx.select().from(principals).where(eq(principals.id, principalId)).for('update');
    if (!principal) throw notFound('principal');
    if (principal.status === change.status) return principal;
    const [row] = await tx
      .update(principals)
      .set({ status: change.status, statusReason: change.reason, ...(change.status === 'disabled' ? { tokensNotBefore: now } : {}) })
      .where(eq(principals.id, principalId))
      .returning();
    await appendAuditEvents(
      tx,
      [{ type: change.status === 'disabled' ? 'principal.disabled' : 'principal.enabled', actor, operator: principal.operatorId, details: { principal: principalId, role: principal.role, reason: change.reason } }],
      now,
    );
    return row!;
  });
}

export const listPrincipals = (db: Database) => db.select().from(principals).orderBy(asc(principals.id));
