import crypto from 'node:crypto';
import { and, asc, eq, inArray } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents, type AuditEvent } from '../audit/audit-log.js';
import { canonicalSha256 } from '../audit/canonical-json.js';
import { gradeRank, gradeSchema } from '../catalog/grades.js';
import { isValidCreditCode } from '../catalog/identity-numbers.js';
import type { Database } from '../db/connect.js';
import { datasets, licences, operators } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import { licenceScopeEntrySchema } from './licence-scope.js';

export type LicenceRow = typeof licences.$inferSelect;
export type OperatorRow = typeof operators.$inferSelect;

export const operatorCreationSchema = z.strictObject({
  id: z.string().regex(/^[a-z][a-z0-9-]{2,62}$/, 'must be lower-case letters, digits and dashes, 3 to 63 characters'),
  name: z.string().min(1).max(200),
  nameZh: z.string().min(1).max(200).optional(),
  creditCode: z
    .string()
    .regex(/^[0-9A-HJ-NPQRTUWXY]{18}$/, 'must be an 18-character unified social credit code')
    // A mistyped code would name another legal person, or none, on every licence and audit leaf of the operator.
    .refine(isValidCreditCode, 'its check character does not match the rest (GB 32100-2015): a character is mistyped')
    .optional(),
});

export const licenceCreationSchema = z
  .strictObject({
    title: z.string().min(1).max(200),
    scope: z.array(licenceScopeEntrySchema).min(1).max(100),
    purposes: z.array(z.enum(['public_interest', 'industry'])).min(1).max(2),
    maxGrade: gradeSchema.exclude(['core']),
    validFrom: z.iso.datetime({ offset: true }),
    validUntil: z.iso.datetime({ offset: true }),
    feeMode: z.enum(['free', 'capped_fee']),
  })
  .refine((licence) => Date.parse(licence.validFrom) < Date.parse(licence.validUntil), {
    path: ['validUntil'],
    message: 'must be after validFrom',
  });

/** A change of a licence's or an operator's status, with the regulator's reason (for the audit log and the operator). */
export const standingChangeSchema = z.strictObject({
  status: z.enum(['active', 'suspended', 'revoked']),
  reason: z.string().min(1).max(2000),
});

/** The audit event of an operator's creation (also written by the demo seed). */
export const operatorCreatedEvent = (operator: Pick<OperatorRow, 'id' | 'name' | 'creditCode'>, actor: string): AuditEvent => ({
  type: 'operator.created',
  actor,
  operator: operator.id,
  details: { name: operator.name, creditCode: operator.creditCode },
});

/** Creates an operator and records who did, in the audit log, in one transaction. */
export async function createOperator(db: Database, input: z.infer<typeof operatorCreationSchema>, createdBy: string, now: Date = new Date()) {
  return db.transaction(async (tx) => {
    const inserted = await tx
      .insert(operators)
      .values({ ...input, nameZh: input.nameZh ?? null, creditCode: input.creditCode ?? null, createdBy, createdAt: now })
      .onConflictDoNothing()
      .returning();
    if (inserted.length === 0) throw new AppError('CONFLICT', `an operator with id ${input.id} exists`);
    await appendAuditEvents(tx, [operatorCreatedEvent(inserted[0]!, createdBy)], now);
    return inserted[0]!;
  });
}

export async function findOperator(db: Database, id: string): Promise<OperatorRow | undefined> {
  const [row] = await db.select().from(operators).where(eq(operators.id, id));
  return row;
}

export const listOperators = (db: Database) => db.select().from(operators).orderBy(asc(operators.id));

export type LicenceGrant = { licence: LicenceRow; replayed: boolean };

/**
 * A licence may only cover registered datasets and columns, at or below its maximum grade; core data is never
 * licensed (GB/T 43697). Checked here, at grant time, so that a licence never promises what policy forbids.
 * The grant and its audit leaf commit together. With an Idempotency-Key, a retry of the same grant (same operator,
 * same body) answers with the licence the first one created instead of granting a second; the same key with
 * another grant is refused.
 */
export async function createLicence(
  db: Database,
  operatorId: string,
  input: z.infer<typeof licenceCreationSchema>,
  createdBy: string,
  options: { idempotencyKey?: string; now?: Date } = {},
): Promise<LicenceGrant> {
  const now = options.now ?? new Date();
  const requestHash = options.idempotencyKey === undefined ? null : canonicalSha256({ operatorId, input });
  if (options.idempotencyKey !== undefined) {
    const earlier = await earlierGrant(db, createdBy, options.idempotencyKey, requestHash!);
    if (earlier) return { licence: earlier, replayed: true };
  }
  await checkScope(db, input);
  return db.transaction(async (tx) => {
    const [row] = await tx
      .insert(licences)
      .values({
        id: `lic_${crypto.randomUUID()}`,
        operatorId,
        title: input.title,
        scope: input.scope,
        purposes: [...new Set(input.purposes)],
        maxGrade: input.maxGrade,
        validFrom: new Date(input.validFrom),
        validUntil: new Date(input.validUntil),
        feeMode: input.feeMode,
        createdBy,
        createdAt: now,
        updatedAt: now,
        idempotencyKey: options.idempotencyKey ?? null,
        requestHash,
      })
      // Only the Idempotency-Key index can conflict (ids are random): a grant under this key committed meanwhile.
      .onConflictDoNothing()
      .returning();
    if (!row) {
      const earlier = await earlierGrant(tx, createdBy, options.idempotencyKey!, requestHash!);
      if (!earlier) throw new Error('a licence grant conflicted without an earlier grant under its key');
      return { licence: earlier, replayed: true };
    }
    await appendAuditEvents(
      tx,
      [
        {
          type: 'licence.granted',
          actor: createdBy,
          operator: operatorId,
          datasets: input.scope.map((entry) => entry.dataset),
          details: { licence: row.id, title: row.title, scope: row.scope, purposes: row.purposes, maxGrade: row.maxGrade, validFrom: row.validFrom.toISOString(), validUntil: row.validUntil.toISOString(), feeMode: row.feeMode },
        },
      ],
      now,
    );
    return { licence: row, replayed: false };
  });
}

async function checkScope(db: Database, input: z.infer<typeof licenceCreationSchema>): Promise<void> {
  const ids = [...new Set(input.scope.map((entry) => entry.dataset))];
  if (ids.length !== input.scope.length) {
    throw new AppError('VALIDATION_FAILED', 'each dataset may appear once in a licence scope');
  }
  const found = await db.select().from(datasets).where(inArray(datasets.id, ids));
  const byId = new Map(found.map((dataset) => [dataset.id, dataset]));
  const problems = input.scope.flatMap((entry, index) => {
    const dataset = byId.get(entry.dataset);
    if (!dataset) return [{ path: `scope.${index}.dataset`, problem: 'no such dataset in the catalogue' }];
    const issues = [];
    if (dataset.grade === 'core') issues.push({ path: `scope.${index}.dataset`, problem: 'core data is never licensed' });
    else if (gradeRank(dataset.grade) > gradeRank(input.maxGrade)) {
      issues.push({ path: `scope.${index}.dataset`, problem: `grade ${dataset.grade} is above the licence's maximum grade` });
    }
    const known = new Set(dataset.columns.map((column) => column.name));
    for (const column of entry.columns ?? []) {
      if (!known.has(column)) issues.push({ path: `scope.${index}.columns`, problem: `no column ${column} in ${dataset.id}` });
    }
    return issues;
  });
  if (problems.length > 0) throw new AppError('VALIDATION_FAILED', 'the licence scope does not fit the catalogue', problems);
}

/** The licence a regulator granted earlier under this Idempotency-Key, if the grant was the same one. */
async function earlierGrant(db: Pick<Database, 'select'>, createdBy: string, key: string, requestHash: string): Promise<LicenceRow | undefined> {
  const [earlier] = await db.select().from(licences).where(and(eq(licences.createdBy, createdBy), eq(licences.idempotencyKey, key)));
  if (earlier && earlier.requestHash !== requestHash) {
    throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different grant; use a new key for a new licence');
  }
  return earlier;
}

export async function findLicence(db: Database, id: string): Promise<LicenceRow | undefined> {
  const [row] = await db.select().from(licences).where(eq(licences.id, id));
  return row;
}

export function listLicences(db: Database, operatorId?: string) {
  const query = db.select().from(licences);
  return (operatorId ? query.where(eq(licences.operatorId, operatorId)) : query).orderBy(asc(licences.createdAt));
}

/** A licence's and an operator's statuses move alike: `active ⇄ suspended → revoked`. */
type StandingStatus = LicenceRow['status'];

const allowedTransitions: Record<StandingStatus, StandingStatus[]> = {
  active: ['suspended', 'revoked'],
  suspended: ['active', 'revoked'],
  // Revocation is final: a revoked licence is replaced by a new grant, a revoked operator by a new operator.
  revoked: [],
};

const statusVerbs: Record<StandingStatus, string> = { active: 'reinstated', suspended: 'suspended', revoked: 'revoked' };

function checkTransition(what: 'licence' | 'operator', from: StandingStatus, to: StandingStatus): void {
  if (!allowedTransitions[from].includes(to)) throw new AppError('INVALID_TRANSITION', `a ${from} ${what} cannot become ${to}`);
}

/**
 * Moves a licence to another status, with the regulator's reason, under a row lock, and records it in the audit
 * log in the same transaction. Asking for the status it already has changes and records nothing, so a retried
 * or doubled request is one suspension, not several.
 */
export async function changeLicenceStatus(
  db: Database,
  licenceId: string,
  change: z.infer<typeof standingChangeSchema>,
  actor: string,
  now: Date = new Date(),
): Promise<LicenceRow> {
  return db.transaction(async (tx) => {
    const [licence] = await tx.select().from(licences).where(eq(licences.id, licenceId)).for('update');
    if (!licence) throw notFound('licence');
    if (licence.status === change.status) return licence;
    checkTransition('licence', licence.status, change.status);
    const [row] = await tx
      .update(licences)
      .set({ status: change.status, statusReason: change.reason, updatedAt: now })
      .where(eq(licences.id, licence.id))
      .returning();
    await appendAuditEvents(
      tx,
      [{ type: `licence.${statusVerbs[change.status]}`, actor, operator: licence.operatorId, details: { licence: licence.id, from: licence.status, to: change.status, reason: change.reason } }],
      now,
    );
    return row!;
  });
}

/**
 * Suspends, reinstates or revokes an operator as a whole (measures art. 21: the authorisation of the operating
 * entity itself), in the same way as a licence: row lock, reason, audit leaf in the same transaction, no change
 * for the status it has. While its operator is not active, no licence of it is in force: its users are refused,
 * its queued jobs fail, its held outputs are not released and its products do not answer; its licences keep
 * their own statuses, so reinstating the operator restores exactly what it held.
 */
export async function changeOperatorStatus(
  db: Database,
  operatorId: string,
  change: z.infer<typeof standingChangeSchema>,
  actor: string,
  now: Date = new Date(),
): Promise<OperatorRow> {
  return db.transaction(async (tx) => {
    const [operator] = await tx.select().from(operators).where(eq(operators.id, operatorId)).for('update');
    if (!operator) throw notFound('operator');
    if (operator.status === change.status) return operator;
    checkTransition('operator', operator.status, change.status);
    const [row] = await tx.update(operators).set({ status: change.status, statusReason: change.reason }).where(eq(operators.id, operator.id)).returning();
    await appendAuditEvents(
      tx,
      [{ type: `operator.${statusVerbs[change.status]}`, actor, operator: operator.id, details: { from: operator.status, to: change.status, reason: change.reason } }],
      now,
    );
    return row!;
  });
}

export function toLicenceView(licence: LicenceRow) {
  return {
    id: licence.id,
    operatorId: licence.operatorId,
    title: licence.title,
    scope: licence.scope,
    purposes: licence.purposes,
    maxGrade: licence.maxGrade,
    validFrom: licence.validFrom.toISOString(),
    validUntil: licence.validUntil.toISOString(),
    feeMode: licence.feeMode,
    status: licence.status,
    statusReason: licence.statusReason,
    createdAt: licence.createdAt.toISOString(),
    updatedAt: licence.updatedAt.toISOString(),
  };
}
