import { eq } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { principals } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';

export type PrincipalRow = typeof principals.$inferSelect;

export const principalCreationSchema = z
  .strictObject({
    id: z.string().regex(/^[a-z][a-z0-9-]{2,62}$/, 'must be lower-case letters, digits and dashes, 3 to 63 characters'),
    role: z.enum(['operator', 'regulator', 'institution', 'consumer', 'admin']),
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

/** Creates a principal and records who did, in the audit log, in one transaction. */
export async function createPrincipal(db: Database, input: z.infer<typeof principalCreationSchema>, createdBy: string, now: Date = new Date()): Promise<PrincipalRow> {
  return db.transaction(async (tx) => {
    const inserted = await tx
      .insert(principals)
      .values({ ...input, operatorId: input.operatorId ?? null, institutionId: input.institutionId ?? null, createdAt: now })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 0) throw new AppError('CONFLICT', `a principal with id ${input.id} exists`);
    await appendAuditEvents(
      tx,
      [{ type: 'principal.created', actor: createdBy, operator: input.operatorId ?? null, details: { principal: input.id, role: input.role, institution: input.institutionId ?? null } }],
      now,
    );
    return inserted[0]!;
  });
}
