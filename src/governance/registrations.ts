import crypto from 'node:crypto';
import { and, desc, eq, inArray, like, sql } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import { canonicalSha256 } from '../audit/canonical-json.js';
import { insertDataset } from '../catalog/catalogue.js';
import { gradeSchema } from '../catalog/grades.js';
import { datasetRegistrationSchema, type DatasetRegistration } from '../catalog/registration.js';
import type { Database } from '../db/connect.js';
import { datasets, registrations } from '../db/schema.js';
import { AppError, notFound } from '../errors/app-error.js';
import { safeIssueMessage } from '../errors/validation-error.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { chinaDay } from '../time/china-time.js';

/**
 * Data registration (measures art. 8). A public body registers a project or system in full: its basic
 * information, its table schemas, its unstructured data and the data it procured from outside. The data centre's
 * technical review runs at every submission and lists what is missing or wrong; a reviewer at the centre then
 * approves — the tables enter the catalogue and the registration is filed with the committee under a filing
 * number — or returns it with reasons, and the institution resubmits.
 *
 * Tables are drafts here, not catalogue entries yet: the review, not the request parser, says what is incomplete,
 * so an institution can file what it knows and learn what to add.
 */
const text = (maximum: number) => z.string().min(1).max(maximum);

export const registrationSchema = z.strictObject({
  kind: z.enum(['project', 'system']),
  name: text(200),
  description: text(4000),
  // 系统基础信息: who owns and built it, where it runs, since when.
  system: z
    .strictObject({ ownerDepartment: text(200).optional(), contractor: text(200).optional(), deployment: text(500).optional(), liveSince: z.iso.date().optional(), contact: text(200).optional() })
    .default({}),
  tables: z.array(z.record(z.string(), z.unknown())).max(200).default([]),
  unstructured: z
    .array(z.strictObject({ name: text(200), format: text(100).optional(), volume: text(100).optional(), grade: gradeSchema.optional(), description: text(2000).optional() }))
    .max(200)
    .default([]),
  procured: z
    .array(z.strictObject({ name: text(200), supplier: text(200).optional(), contract: text(200).optional(), licenceTerms: text(2000).optional(), grade: gradeSchema.optional(), description: text(2000).optional() }))
    .max(200)
    .default([]),
});
export type RegistrationContent = z.infer<typeof registrationSchema>;

export const registrationReviewSchema = z
  .strictObject({ decision: z.enum(['approve', 'return']), reasons: z.array(text(2000)).max(50).optional() })
  .refine((input) => input.decision === 'approve' || (input.reasons?.length ?? 0) > 0, { message: 'a returned registration gives its reasons', path: ['reasons'] });

export type RegistrationRow = typeof registrations.$inferSelect;
const filingNumberLock = 0x7064735f66696c65;
/**
 * A finding of the technical review: where, what (in English, for the API and the audit), and a stable code the
 * console shows in the reader's language. A finding from the registration schema itself is `INVALID`.
 */
export type FindingCode =
  | 'NOTHING_REGISTERED'
  | 'SYSTEM_FIELD_REQUIRED'
  | 'INVALID'
  | 'REQUIRED'
  | 'REGISTERED_TWICE'
  | 'ALREADY_IN_CATALOGUE'
  | 'GRADE_REQUIRED'
  | 'FORMAT_REQUIRED'
  | 'SUPPLIER_REQUIRED'
  | 'CONTRACT_REQUIRED';
export type Finding = { path: string; problem: string; code?: FindingCode };

/** What a registration holds at a path, or undefined where nothing was written. */
function valueAt(value: unknown, path: PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** The technical review (登记检查和技术审查): completeness of every part, grades and column classes set, no clashes. */
export async function technicalReview(platform: Pick<Platform, 'db'>, content: RegistrationContent): Promise<{ findings: Finding[]; tables: DatasetRegistration[] }> {
  const findings: Finding[] = [];
  const tables: DatasetRegistration[] = [];
  if (content.tables.length + content.unstructured.length + content.procured.length === 0) findings.push({ path: '', problem: 'registers no tables, unstructured data or procured data', code: 'NOTHING_REGISTERED' });
  if (content.kind === 'system') {
    for (const field of ['ownerDepartment', 'deployment', 'liveSince'] as const) if (!content.system[field]) findings.push({ path: `system.${field}`, problem: 'is required for a system', code: 'SYSTEM_FIELD_REQUIRED' });
  }
  const ids = new Set<string>();
  content.tables.forEach((table, index) => {
    const parsed = datasetRegistrationSchema.safeParse(table);
    if (!parsed.success) {
      // A field left out is the commonest finding of a registration written in parts; it says so in words.
      findings.push(
        ...parsed.error.issues.slice(0, 50).map((issue): Finding => {
          const path = ['tables', index, ...issue.path].join('.');
          return valueAt(table, issue.path) === undefined ? { path, problem: 'is required', code: 'REQUIRED' } : { path, problem: safeIssueMessage(issue), code: 'INVALID' };
        }),
      );
      return;
    }
    if (ids.has(parsed.data.id)) findings.push({ path: `tables.${index}.id`, problem: 'is registered twice in this registration', code: 'REGISTERED_TWICE' });
    ids.add(parsed.data.id);
    tables.push(parsed.data);
  });
  if (ids.size > 0) {
    const existing = await platform.db.select({ id: datasets.id }).from(datasets).where(inArray(datasets.id, [...ids]));
    for (const row of existing) findings.push({ path: `tables.${content.tables.findIndex((table) => table.id === row.id)}.id`, problem: `${row.id} is already in the catalogue`, code: 'ALREADY_IN_CATALOGUE' });
  }
  content.unstructured.forEach((item, index) => {
    if (!item.grade) findings.push({ path: `unstructured.${index}.grade`, problem: 'needs a security grade', code: 'GRADE_REQUIRED' });
    if (!item.format) findings.push({ path: `unstructured.${index}.format`, problem: 'needs its format', code: 'FORMAT_REQUIRED' });
  });
  content.procured.forEach((item, index) => {
    if (!item.grade) findings.push({ path: `procured.${index}.grade`, problem: 'needs a security grade', code: 'GRADE_REQUIRED' });
    if (!item.supplier) findings.push({ path: `procured.${index}.supplier`, problem: 'needs its supplier', code: 'SUPPLIER_REQUIRED' });
    if (!item.contract) findings.push({ path: `procured.${index}.contract`, problem: 'needs the contract it was procured under', code: 'CONTRACT_REQUIRED' });
  });
  return { findings, tables };
}

export async function submitRegistration(platform: Platform, principal: PrincipalRow, content: RegistrationContent, existingId?: string): Promise<RegistrationRow> {
  if (principal.role !== 'institution' || !principal.institutionId) throw new AppError('FORBIDDEN', 'public bodies register their own projects and systems');
  const { findings } = await technicalReview(platform, content);
  const now = platform.clock();
  return platform.db.transaction(async (tx) => {
    let row: RegistrationRow | undefined;
    if (existingId) {
      const [current] = await tx.select().from(registrations).where(eq(registrations.id, existingId)).for('update');
      if (!current || current.institutionId !== principal.institutionId) throw notFound('registration');
      if (current.status !== 'returned') throw new AppError('INVALID_TRANSITION', `a ${current.status} registration cannot be resubmitted`);
      [row] = await tx
        .update(registrations)
        .set({ content, kind: content.kind, name: content.name, findings, status: 'submitted', submission: current.submission + 1, submittedBy: principal.id, updatedAt: now })
        .where(eq(registrations.id, existingId))
        .returning();
    } else {
      [row] = await tx
        .insert(registrations)
        .values({ id: `reg_${crypto.randomUUID()}`, institutionId: principal.institutionId!, submittedBy: principal.id, kind: content.kind, name: content.name, content, findings, status: 'submitted', submission: 1, createdAt: now, updatedAt: now })
        .returning();
    }
    await appendAuditEvents(tx, [{ type: 'registration.submitted', actor: principal.id, details: { registration: row!.id, institution: principal.institutionId, submission: row!.submission, findings: findings.length } }], now);
    return row!;
  });
}

/**
 * The data centre's decision. Approval needs a clean technical review (re-run now: the catalogue may have changed
 * since submission); it registers the tables in the catalogue and files the registration with the committee, all
 * in one transaction.
 */
export async function reviewRegistration(platform: Platform, principal: PrincipalRow, id: string, input: z.infer<typeof registrationReviewSchema>): Promise<RegistrationRow> {
  const [known] = await platform.db.select().from(registrations).where(eq(registrations.id, id));
  if (!known) throw notFound('registration');
  if (known.status !== 'submitted') throw new AppError('INVALID_TRANSITION', `the registration is ${known.status}`);
  const now = platform.clock();
  if (input.decision === 'return') {
    return platform.db.transaction(async (tx) => {
      const [row] = await tx
        .update(registrations)
        .set({ status: 'returned', returnReasons: input.reasons!, reviewedBy: principal.id, updatedAt: now })
        .where(and(eq(registrations.id, id), eq(registrations.status, 'submitted')))
        .returning();
      if (!row) throw new AppError('INVALID_TRANSITION', 'the registration was decided meanwhile');
      await appendAuditEvents(tx, [{ type: 'registration.returned', actor: principal.id, details: { registration: id, institution: known.institutionId, submission: known.submission, reasons: input.reasons } }], now);
      return row;
    });
  }
  const content = registrationSchema.parse(known.content);
  const { findings, tables } = await technicalReview(platform, content);
  if (findings.length > 0) throw new AppError('REGISTRATION_INCOMPLETE', 'the technical review found problems; return the registration with them', findings.slice(0, 50).map(({ path, problem }) => ({ path, problem })));
  return platform.db.transaction(async (tx) => {
    const row = await fileRegistration(tx as never, { id, institutionId: known.institutionId, submittedBy: known.submittedBy, content, tables, reviewer: principal.id }, now);
    if (!row) throw new AppError('INVALID_TRANSITION', 'the registration was decided meanwhile');
    return row;
  });
}

type Executor = Parameters<typeof insertDataset>[0] & Pick<Database, 'execute'>;

/**
 * Files a submitted registration with the committee, in the caller's transaction: draws the next filing number,
 * registers its tables in the catalogue (each remembering the registration it came with), and appends the filing
 * leaf with a hash of exactly what was filed, so the committee's copy can be checked later. Returns nothing when
 * the registration is no longer waiting for review.
 */
export async function fileRegistration(
  tx: Executor,
  input: { id: string; institutionId: string; submittedBy: string; content: RegistrationContent; tables: DatasetRegistration[]; reviewer: string },
  now: Date,
): Promise<RegistrationRow | undefined> {
  const year = chinaDay(now).slice(0, 4);
  // Filing numbers are consecutive per year: approvals take turns to draw the next one.
  await tx.execute(sql`SELECT pg_advisory_xact_lock(${filingNumberLock})`);
  const [last] = await tx
    .select({ filingNumber: registrations.filingNumber })
    .from(registrations)
    .where(like(registrations.filingNumber, `LG-DR-${year}-%`))
    .orderBy(desc(registrations.filingNumber))
    .limit(1);
  const filingNumber = `LG-DR-${year}-${String(Number(last?.filingNumber?.slice(-5) ?? '0') + 1).padStart(5, '0')}`;
  const [row] = await tx
    .update(registrations)
    .set({ status: 'filed', reviewedBy: input.reviewer, returnReasons: null, filingNumber, filedAt: now, updatedAt: now })
    .where(and(eq(registrations.id, input.id), eq(registrations.status, 'submitted')))
    .returning();
  if (!row) return undefined;
  for (const table of input.tables) await insertDataset(tx, table, input.institutionId, input.submittedBy, now, input.id);
  const contentHash = canonicalSha256(input.content);
  await appendAuditEvents(
    tx,
    [{ type: 'registration.filed', actor: input.reviewer, datasets: input.tables.map((table) => table.id), details: { registration: input.id, institution: input.institutionId, filingNumber, contentHash, tables: input.tables.length, unstructured: input.content.unstructured.length, procured: input.content.procured.length } }],
    now,
  );
  return row;
}

export async function listRegistrations(platform: Platform, principal: PrincipalRow, status?: RegistrationRow['status']): Promise<RegistrationRow[]> {
  const withStatus = status ? eq(registrations.status, status) : undefined;
  const query = platform.db.select().from(registrations);
  if (principal.role === 'admin' || principal.role === 'regulator') return query.where(withStatus).orderBy(desc(registrations.createdAt));
  if (principal.role !== 'institution' || !principal.institutionId) return [];
  return query.where(and(eq(registrations.institutionId, principal.institutionId), withStatus)).orderBy(desc(registrations.createdAt));
}

export function toRegistrationView(row: RegistrationRow) {
  return {
    id: row.id,
    institution: row.institutionId,
    kind: row.kind,
    name: row.name,
    status: row.status,
    submission: row.submission,
    findings: row.findings,
    returnReasons: row.returnReasons,
    filing: row.filingNumber ? { number: row.filingNumber, filedAt: row.filedAt!.toISOString(), with: 'lingang-committee' } : null,
    content: row.content,
    createdAt: row.createdAt.toISOString(),
    updatedAt: row.updatedAt.toISOString(),
  };
}
