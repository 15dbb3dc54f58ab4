import crypto from 'node:crypto';
import { and, eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import { appendAuditEvents } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { budgetCharges, privacyBudgets } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';

/**
 * The privacy budget ledger. A DP job reserves its cost with one conditional UPDATE before it runs, so the budget
 * is never overspent however many jobs race for it. A job that fails because of its own query is charged
 * (failures leak information); a system failure is refunded. Caps and resets come only from regulators, and
 * every change is an audit leaf committed with it.
 */
export const MICRO = 1_000_000;
export const PICO = 1_000_000_000_000;

/** ε as operators and regulators write it: finite, positive, neither negligible nor absurd. */
export const epsilonSchema = z
  .number()
  .finite()
  .min(0.001, 'ε below 0.001 gives no useful answer')
  .max(10, 'ε above 10 gives no meaningful protection');
export const deltaSchema = z.number().finite().min(0).max(1e-5, 'δ above 1e-5 is too weak for personal data');

export const toMicro = (epsilon: number) => Math.round(epsilon * MICRO);
export const toPico = (delta: number) => Math.round(delta * PICO);

export type BudgetRow = typeof privacyBudgets.$inferSelect;

export async function setBudgetCap(
  db: Database,
  input: { licenceId: string; datasetId: string; epsilonCap: number; deltaCap?: number; reason: string },
  actor: string,
  now: Date,
): Promise<BudgetRow> {
  return db.transaction(async (tx) => {
    // The cap it replaces goes into the leaf with the reason, so that the log alone shows a cap raised mid-year
    // and why; the row lock keeps another change from landing between this read and the write.
    const [before] = await tx
      .select({ epsilonCapMicro: privacyBudgets.epsilonCapMicro, deltaCapPico: privacyBudgets.deltaCapPico })
      .from(privacyBudgets)
      .where(and(eq(privacyBudgets.licenceId, input.licenceId), eq(privacyBudgets.datasetId, input.datasetId)))
      .for('update');
    const [row] = await tx
      .insert(privacyBudgets)
      .values({
        id: `bud_${crypto.randomUUID()}`,
        licenceId: input.licenceId,
        datasetId: input.datasetId,
        epsilonCapMicro: toMicro(input.epsilonCap),
        deltaCapPico: toPico(input.deltaCap ?? 0),
        updatedAt: now,
      })
      .onConflictDoUpdate({
        target: [privacyBudgets.licenceId, privacyBudgets.datasetId],
        set: { epsilonCapMicro: toMicro(input.epsilonCap), deltaCapPico: toPico(input.deltaCap ?? 0), updatedAt: now },
      })
      .returning();
    await appendAuditEvents(
      tx as never,
      [
        {
          type: 'budget.cap-set',
          actor,
          datasets: [input.datasetId],
          details: {
            licence: input.licenceId,
            reason: input.reason,
            epsilonCapMicro: row!.epsilonCapMicro,
            deltaCapPico: row!.deltaCapPico,
            ...(before ? { epsilonCapMicroBefore: before.epsilonCapMicro, deltaCapPicoBefore: before.deltaCapPico } : {}),
          },
        },
      ],
      now,
    );
    return row!;
  });
}

/** Reserves a job's cost, or refuses with BUDGET_EXHAUSTED. Reserving twice for one job is refused by the index. */
export async function reserveBudget(
  db: Database,
  request: { licenceId: string; datasetId: string; jobId: string; epsilon: number; delta?: number },
  now: Date,
): Promise<{ budget: BudgetRow; chargeId: string }> {
  const epsilonMicro = toMicro(epsilonSchema.parse(request.epsilon));
  const deltaPico = toPico(deltaSchema.parse(request.delta ?? 0));
  return db.transaction(async (tx) => {
    const [budget] = await tx
      .update(privacyBudgets)
      .set({
        epsilonSpentMicro: sql`${privacyBudgets.epsilonSpentMicro} + ${epsilonMicro}`,
        deltaSpentPico: sql`${privacyBudgets.deltaSpentPico} + ${deltaPico}`,
        updatedAt: now,
      })
      .where(
        and(
          eq(privacyBudgets.licenceId, request.licenceId),
          eq(privacyBudgets.datasetId, request.datasetId),
          sql`${privacyBudgets.epsilonSpentMicro} + ${epsilonMicro} <= ${privacyBudgets.epsilonCapMicro}`,
          sql`${privacyBudgets.deltaSpentPico} + ${deltaPico} <= ${privacyBudgets.deltaCapPico}`,
        ),
      )
      .returning();
    if (!budget) throw new AppError('BUDGET_EXHAUSTED', 'the privacy budget of this licence and dataset does not cover this job');
    const chargeId = `chg_${crypto.randomUUID()}`;
    await tx.insert(budgetCharges).values({ id: chargeId, budgetId: budget.id, jobId: request.jobId, epsilonMicro, deltaPico, state: 'reserved', createdAt: now });
    await appendAuditEvents(tx as never, [{ type: 'budget.reserved', actor: 'system', job: request.jobId, datasets: [request.datasetId], details: { licence: request.licenceId, epsilonMicro, deltaPico, spentMicro: budget.epsilonSpentMicro } }], now);
    return { budget, chargeId };
  });
}

/** Settles a reservation: `charged` keeps it spent; `refunded` gives it back (system failures only). */
export async function settleBudget(db: Database, chargeId: string, outcome: 'charged' | 'refunded', now: Date): Promise<void> {
  await db.transaction(async (tx) => {
    const [charge] = await tx
      .update(budgetCharges)
      .set({ state: outcome })
      .where(and(eq(budgetCharges.id, chargeId), eq(budgetCharges.state, 'reserved')))
      .returning();
    if (!charge) return;
    if (outcome === 'refunded') {
      await tx
        .update(privacyBudgets)
        .set({
          epsilonSpentMicro: sql`${privacyBudgets.epsilonSpentMicro} - ${charge.epsilonMicro}`,
          deltaSpentPico: sql`${privacyBudgets.deltaSpentPico} - ${charge.deltaPico}`,
          updatedAt: now,
        })
        .where(eq(privacyBudgets.id, charge.budgetId));
    }
    await appendAuditEvents(tx as never, [{ type: `budget.${outcome}`, actor: 'system', job: charge.jobId, details: { charge: charge.id, epsilonMicro: charge.epsilonMicro } }], now);
  });
}

export function toBudgetView(budget: BudgetRow) {
  return {
    id: budget.id,
    licenceId: budget.licenceId,
    datasetId: budget.datasetId,
    epsilonCap: budget.epsilonCapMicro / MICRO,
    epsilonSpent: budget.epsilonSpentMicro / MICRO,
    // None left, not a negative amount, where a regulator lowered the cap below what was spent.
    epsilonRemaining: Math.max(0, budget.epsilonCapMicro - budget.epsilonSpentMicro) / MICRO,
    deltaCap: budget.deltaCapPico / PICO,
    deltaSpent: budget.deltaSpentPico / PICO,
    updatedAt: budget.updatedAt.toISOString(),
  };
}

/**
 * A regulator's reset of what a budget has spent (for instance at the start of a new licence year). The reset is
 * an audit leaf naming who did it and why, and what had been spent.
 */
export async function resetBudget(db: Database, budgetId: string, reason: string, actor: string, now: Date): Promise<BudgetRow | undefined> {
  return db.transaction(async (tx) => {
    // The row lock keeps a reservation (or another reset) from landing between the read and the reset: the leaf
    // must name exactly what the reset erased.
    const [before] = await tx.select().from(privacyBudgets).where(eq(privacyBudgets.id, budgetId)).for('update');
    if (!before) return undefined;
    const [after] = await tx.update(privacyBudgets).set({ epsilonSpentMicro: 0, deltaSpentPico: 0, updatedAt: now }).where(eq(privacyBudgets.id, budgetId)).returning();
    await appendAuditEvents(
      tx as never,
      [{ type: 'budget.reset', actor, datasets: [before.datasetId], details: { licence: before.licenceId, reason, spentMicroBefore: before.epsilonSpentMicro, spentPicoBefore: before.deltaSpentPico } }],
      now,
    );
    return after;
  });
}
