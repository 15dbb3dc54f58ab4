import os from 'node:os';
import { and, count, eq, gte, inArray, lte } from 'drizzle-orm';
import { sandboxQueries, type ExecutionPlan } from '../analysis/execution-plan.js';
import { licencesInForceAmong } from '../authz/entities.js';
import { changedAnalysedEntries } from '../catalog/analysis-catalogue.js';
import type { Database } from '../db/connect.js';
import { jobs } from '../db/schema.js';
import { checkOutput, type SuppressionCode } from '../disclosure/disclosure-control.js';
import { AppError } from '../errors/app-error.js';
import { recordIncident } from '../governance/incidents.js';
import type { SnapshotStore } from '../domain-store/snapshot-store.js';
import type { KeyRing } from '../identity/keys.js';
import type { DisclosurePolicy } from '../policy/disclosure-policy.js';
import { detailHash, releaseJob, transitionJob } from '../release/release-job.js';
import type { SandboxPool } from '../sandbox/sandbox-pool.js';
import { settleBudget } from '../privacy/budget-ledger.js';
import type { DpPlan } from '../privacy/dp-plan.js';
import { betaVariable } from '../privacy/dp-model.js';
import { applyDpNoise, releaseDpLogisticModel } from '../privacy/dp-release.js';
import { SKETCH_LAYOUT, SKETCH_SECRET_VARIABLE } from '../privacy/contributor-sketch.js';
import { guardKeyOf, guardPlannedCells, recordGuardedCells } from '../privacy/differencing-guard.js';
import type { ModelPlan } from '../models/model-job.js';
import { trainModel } from '../models/train-model.js';
import { sameShapeHold } from './job-stage.js';

export type JobRunnerDependencies = {
  db: Database;
  store: SnapshotStore;
  pool: SandboxPool;
  disclosurePolicy: DisclosurePolicy;
  keys: KeyRing;
  clock: () => Date;
};

/** Which process ran a job, for the audit trail (several `pds worker` processes may share the queue). */
const workerName = `${os.hostname()}:${process.pid}`;

/** What an operator is told when its job fails: a stable code and a reason that carries no data. */
const failureText = {
  query_error: {
    code: 'QUERY_FAILED',
    // DuckDB's own text is withheld: a failed conversion quotes the value it could not convert. The commonest
    // cause gets a hint written for it; binding mistakes are refused before a job runs (BIND_ERROR).
    reason:
      "the query failed while running: a cast failed (a text column compared with a number, as in industry_code = 3612, casts every row of the column: write industry_code = '3612'), an arithmetic error, or the memory limit; the details are kept for regulators",
  },
  time_limit: { code: 'TIME_LIMIT', reason: 'the query ran past the wall-time limit of its grade and was stopped' },
  system_error: { code: 'SYSTEM_FAILURE', reason: 'a platform failure stopped the job; it was not caused by the query' },
  licence_inactive: { code: 'LICENCE_INACTIVE', reason: "the operator's licence was no longer in force when the job came to run (suspended, revoked or expired); no data was read" },
  policy_changed: { code: 'POLICY_CHANGED', reason: 'the disclosure policy changed after this job was accepted; no data was read: submit it again to be checked under the policy in force' },
  policy_changed_at_release: { code: 'POLICY_CHANGED', reason: 'the disclosure policy changed while this job ran; its output was discarded, not released: submit it again' },
  catalogue_changed: { code: 'CATALOGUE_CHANGED', reason: 'the catalogue entry of a dataset this job reads changed after it was accepted (grade, open data, privacy unit or column classes); no data was read: submit it again to be checked under the entry as it is now' },
  catalogue_changed_at_release: { code: 'CATALOGUE_CHANGED', reason: 'the catalogue entry of a dataset this job reads changed while it ran (grade, open data, privacy unit or column classes); its output was discarded, not released: submit it again' },
  licence_inactive_at_release: { code: 'LICENCE_INACTIVE', reason: "the operator's licence stopped being in force (suspended, revoked or expired) while the job ran; its output was discarded, not released" },
} as const;

/**
 * Runs one queued job through the sandbox and disclosure control, then releases it automatically or holds it
 * for review, as its grade says (docs/jobs.md). Every transition is an audit leaf committed with it.
 * Idempotent: a job that is no longer queued (or running, after a crash) is left alone.
 */
export async function runJob(deps: JobRunnerDependencies, jobId: string): Promise<void> {
  const { db } = deps;
  const [current] = await db.select().from(jobs).where(and(eq(jobs.id, jobId), inArray(jobs.status, ['queued', 'running'])));
  if (!current) return;
  const job = await transitionJob(
    db,
    current,
    { status: 'running', stage: 'running in the sandbox', startedAt: deps.clock(), attempts: current.attempts + 1 },
    { actor: 'system', at: deps.clock(), details: { worker: workerName }, onlyFrom: ['queued', 'running'] },
  );
  if (!job) return;
  const plan = job.plan as ExecutionPlan | DpPlan | ModelPlan;
  // What the job was accepted under must still hold when it reads data; if not, it fails before it does, and a DP
  // job's reserved budget is given back (no noisy answer was drawn).
  const stale = await acceptedTermsChanged(deps, job);
  if (stale) {
    if (plan.kind === 'dp_aggregate') for (const chargeId of plan.chargeIds ?? (plan.chargeId ? [plan.chargeId] : [])) await settleBudget(db, chargeId, 'refunded', deps.clock());
    return failJob(deps, job, stale);
  }
  const grade = job.grade!;
  const gradePolicy = deps.disclosurePolicy.grades[grade];
  const snapshots = Object.entries(job.datasetVersions).map(([datasetId, contentHash]) => ({ datasetId, path: deps.store.snapshotPath(datasetId, contentHash) }));
  const variables = { [SKETCH_SECRET_VARIABLE]: deps.keys.derivedSecret('differencing-guard sketch keys') };
  const review = await reviewFor(deps, job, gradePolicy.reviewers);
  if (plan.kind === 'model') {
    if (!plan.statistics || plan.statistics.sketch?.layout !== SKETCH_LAYOUT || !plan.statistics.sketch.units) {
      // Planned before a model's statistics were checked like a table's cell: it would run with fewer checks.
      return failJob(deps, job, { kind: 'system_error', internalDetail: 'the model job was planned before its statistics were checked by disclosure control; it must be resubmitted' });
    }
    let guarded: Awaited<ReturnType<typeof guardPlannedCells>> | undefined;
    const trained = await trainModel({
      plan,
      pool: deps.pool,
      jobId,
      snapshots,
      grade: gradePolicy,
      gradeName: grade,
      policy: deps.disclosurePolicy,
      variables,
      checkStatistics: async (results) => {
        guarded = await guardPlannedCells(deps.db, guardKeyOf(deps.keys), plan.statistics, results);
        // Zeros are about tables of people; a sum of zero among a model's statistics is not withheld for that.
        const checked = checkOutput({ plan: plan.statistics, results, grade: { ...gradePolicy, zeros: 'release' }, gradeName: grade, policyHash: job.policyHash, differencingRows: guarded.differencingRows });
        return checked.manifest.suppressedRows[0]?.code ?? null;
      },
    });
    if (trained.outcome === 'failed') return failJob(deps, job, trained);
    if (trained.outcome === 'withheld' && trained.code === 'MODEL_DIFFERENCING') await reportDifferencing(deps, job, { MODEL_DIFFERENCING: 1 });
    // The training rows are one cell: kept for the guard like a released table's cells.
    if (trained.outcome === 'released' && guarded) await recordGuardedCells(deps.db, jobId, guarded.guards, new Set([0]));
    return settleChecked(deps, job, trained, review, 'CHECKED');
  }
  if (plan.kind !== 'dp_aggregate' && plan.sketch && (plan.sketch.layout !== SKETCH_LAYOUT || !plan.sketch.units)) {
    // Planned by an earlier version, whose sketches cannot be compared with those kept now or which sketched only
    // one of the datasets it joins; running it so is not an option. The operator resubmits (the failure is the
    // platform's, not the query's).
    return failJob(deps, job, { kind: 'system_error', internalDetail: 'the job was planned with an earlier contributor-sketch layout; it must be resubmitted' });
  }
  if (plan.kind === 'dp_aggregate' && plan.model?.type === 'logistic') return runDpLogisticModel(deps, job, plan, { snapshots, variables, review });
  const outcome = await deps.pool.run({
    jobId,
    snapshots,
    queries: plan.kind === 'dp_aggregate' ? [{ name: 'main', sql: plan.sql, rowLimit: 1_000_000 }] : sandboxQueries(plan),
    limits: gradePolicy.limits,
    variables,
  });
  if (plan.kind === 'dp_aggregate') {
    // A failure of the job's own query leaks, so it is charged; only a platform failure gives the budget back.
    for (const chargeId of plan.chargeIds ?? (plan.chargeId ? [plan.chargeId] : [])) {
      await settleBudget(deps.db, chargeId, !outcome.ok && outcome.kind === 'system_error' ? 'refunded' : 'charged', deps.clock());
    }
  }
  if (!outcome.ok) return failJob(deps, job, outcome);
  // The differencing guard: cells whose contributors, in any protected unit, differ slightly from those of an
  // already released cell of the same dataset.
  const guarded = plan.kind === 'dp_aggregate' ? undefined : await guardPlannedCells(deps.db, guardKeyOf(deps.keys), plan, outcome.results);
  const noisy = plan.kind === 'dp_aggregate' ? applyDpNoise(plan, outcome.results[0]!, { grade, policyHash: job.policyHash }) : undefined;
  const checked =
    plan.kind === 'dp_aggregate'
      ? noisy!.withheld
        ? ({ outcome: 'withheld', ...noisy!.withheld, manifest: noisy!.manifest } as const)
        : ({ outcome: 'released', ...noisy! } as const)
      : checkOutput({ plan, results: outcome.results, grade: gradePolicy, gradeName: grade, policyHash: job.policyHash, ...(guarded ? { differencingRows: guarded.differencingRows } : {}) });
  if (checked.outcome === 'released' && guarded) {
    // Guarded outputs come from checkOutput, which names the released cells by their place in the main result.
    await recordGuardedCells(deps.db, jobId, guarded.guards, new Set('releasedCells' in checked ? checked.releasedCells : []));
  }
  // The whole checked table counts, not only the rows a HAVING or LIMIT applied after release kept: a differencing
  // attempt is an incident whether or not its cell was listed.
  const wholeTable = ('checkedTable' in checked.manifest && checked.manifest.checkedTable?.suppressedByCode) || checked.manifest.suppressedByCode;
  const { DIFFERENCING, SMALL_COMPLEMENT } = wholeTable as Partial<Record<SuppressionCode, number>>;
  if (DIFFERENCING || SMALL_COMPLEMENT) await reportDifferencing(deps, job, { ...(DIFFERENCING ? { DIFFERENCING } : {}), ...(SMALL_COMPLEMENT ? { SMALL_COMPLEMENT } : {}) });
  const statusCode = plan.kind === 'dp_aggregate' ? 'CHECKED_WITH_NOISE' : Object.keys(wholeTable).length > 0 ? 'CHECKED_WITH_SUPPRESSION' : 'CHECKED';
  await settleChecked(deps, job, checked, review, statusCode);
}

type Job = NonNullable<Awaited<ReturnType<typeof transitionJob>>>;

/**
 * A differentially private logistic regression: one sandbox run per noisy Newton step, at the coefficients the
 * steps before reached (passed as sandbox variables, never as SQL text). The budget reserved at submission pays for
 * all of them; like a DP aggregate's, it is given back only when the platform, not the query, failed a step.
 */
async function runDpLogisticModel(
  deps: JobRunnerDependencies,
  job: Job,
  plan: DpPlan,
  run: { snapshots: Array<{ datasetId: string; path: string }>; variables: Record<string, string>; review: Awaited<ReturnType<typeof reviewFor>> },
): Promise<void> {
  const limits = deps.disclosurePolicy.grades[job.grade!].limits;
  const fitted = await releaseDpLogisticModel(
    plan,
    async (beta, step) => {
      const coefficients = Object.fromEntries(beta.map((b, j) => [betaVariable(j), String(b)]));
      const outcome = await deps.pool.run({ jobId: `${job.id}#${step}`, snapshots: run.snapshots, queries: [{ name: 'main', sql: plan.sql, rowLimit: 2 }], limits, variables: { ...run.variables, ...coefficients } });
      return outcome.ok ? { ok: true as const, result: outcome.results[0]! } : { ok: false as const, kind: outcome.kind, internalDetail: outcome.internalDetail };
    },
    { grade: job.grade!, policyHash: job.policyHash },
  );
  for (const chargeId of plan.chargeIds ?? []) await settleBudget(deps.db, chargeId, !fitted.ok && fitted.kind === 'system_error' ? 'refunded' : 'charged', deps.clock());
  if (!fitted.ok) return failJob(deps, job, fitted);
  const { output } = fitted;
  const checked = output.withheld ? ({ outcome: 'withheld', ...output.withheld, manifest: output.manifest } as const) : ({ outcome: 'released', ...output } as const);
  await settleChecked(deps, job, checked, run.review, 'CHECKED_WITH_NOISE');
}

/** Why a job may no longer run under what it was accepted under, if so. */
async function acceptedTermsChanged(deps: JobRunnerDependencies, job: Job): Promise<{ kind: keyof typeof failureText; internalDetail: string } | undefined> {
  // Its licence (measures art. 21): a queued job does not outlive a suspension, a revocation or the licence's term.
  if (job.licenceId && !(await licencesInForceAmong(deps.db, [job.licenceId], deps.clock())).has(job.licenceId)) {
    return { kind: 'licence_inactive', internalDetail: `licence ${job.licenceId} was not in force at ${deps.clock().toISOString()}` };
  }
  // Its disclosure policy: a process started with another policy file would check it by rules its plan was not
  // built for, and its receipt would name a policy that did not.
  if (job.policyHash !== deps.disclosurePolicy.hash) {
    return { kind: 'policy_changed', internalDetail: `accepted under policy ${job.policyHash}, run under ${deps.disclosurePolicy.hash}` };
  }
  // The catalogue entries it was analysed under: a regraded dataset has other thresholds, a reclassified column
  // other rules, and data no longer open gives no rows.
  const changed = job.catalogueEntries ? await changedAnalysedEntries(deps.db, job.catalogueEntries) : [];
  if (changed.length > 0) {
    return { kind: 'catalogue_changed', internalDetail: `the analysed catalogue entries of ${changed.join(', ')} changed after the job was accepted` };
  }
  return undefined;
}

/**
 * How many reviewers the output waits for: the grade's, or at least one when its operator has submitted more jobs
 * of this shape (the same SQL with other constants) in the 24 hours up to it than the policy allows — bisection
 * of a value cannot run unattended. The first job past the limit is an incident for regulators.
 */
async function reviewFor(deps: JobRunnerDependencies, job: Job, gradeReviewers: number): Promise<{ reviewers: number; heldBecause?: string }> {
  const limit = deps.disclosurePolicy.probing.sameShapeJobsPerDay;
  if (!job.sqlShape) return { reviewers: gradeReviewers };
  const [row] = await deps.db
    .select({ jobs: count() })
    .from(jobs)
    .where(and(eq(jobs.operatorId, job.operatorId), eq(jobs.sqlShape, job.sqlShape), gte(jobs.createdAt, new Date(job.createdAt.getTime() - 86_400_000)), lte(jobs.createdAt, job.createdAt)));
  const sameShape = Number(row?.jobs ?? 0);
  if (sameShape <= limit) return { reviewers: gradeReviewers };
  if (sameShape === limit + 1) {
    await deps.db.transaction((tx) =>
      recordIncident(tx, { kind: 'probing', operatorId: job.operatorId, principalId: job.submittedBy, jobId: job.id, detail: { datasets: job.datasets, sameShapeJobs: sameShape, withinHours: 24 } }, deps.clock()),
    );
  }
  return { reviewers: Math.max(1, gradeReviewers), heldBecause: sameShapeHold(limit) };
}

/**
 * An output with cells withheld because they differ by a few people from what was released (or from the cell's
 * own total) is what a differencing attempt looks like — and sometimes what two honest analyses look like: an
 * incident for regulators to look at, naming the job and the counts by code, never a cell.
 */
async function reportDifferencing(deps: JobRunnerDependencies, job: Job, suppressed: Record<string, number>): Promise<void> {
  await deps.db.transaction((tx) =>
    recordIncident(tx, { kind: 'differencing', operatorId: job.operatorId, principalId: job.submittedBy, jobId: job.id, detail: { datasets: job.datasets, suppressed } }, deps.clock()),
  );
}

async function failJob(deps: JobRunnerDependencies, job: Job, outcome: { kind: keyof typeof failureText; internalDetail: string }, onlyFrom: Job['status'][] = ['running']): Promise<void> {
  const text = failureText[outcome.kind];
  await transitionJob(
    deps.db,
    job,
    { status: 'failed', stage: null, statusCode: text.code, statusReason: text.reason, internalDetail: outcome.internalDetail, output: null, finishedAt: deps.clock() },
    // The leaf commits to the internal text by hash only: the log is read more widely than the job record.
    { actor: 'system', at: deps.clock(), details: { code: text.code, internalDetailHash: detailHash(outcome.internalDetail) }, onlyFrom },
  );
}

/** A checked output is withheld, held for review or released, as its outcome and grade say. */
async function settleChecked(
  deps: JobRunnerDependencies,
  job: Job,
  checked:
    | { outcome: 'released'; columns: unknown[]; rows: unknown[][]; manifest: { contentHash: string | null; rowCount: number; columnCount: number; suppressedByCode: object } }
    | { outcome: 'withheld'; code: string; reason: string; manifest: { contentHash: string | null; rowCount: number; columnCount: number; suppressedByCode: object } },
  review: { reviewers: number; heldBecause?: string },
  statusCode: string,
): Promise<void> {
  const { reviewers } = review;
  const finishedAt = deps.clock();
  if (checked.outcome === 'withheld') {
    await transitionJob(
      deps.db,
      job,
      { status: 'withheld', stage: null, statusCode: checked.code, statusReason: checked.reason, manifest: checked.manifest, finishedAt },
      { actor: 'system', at: finishedAt, details: { code: checked.code, manifest: summary(checked.manifest) }, onlyFrom: ['running'] },
    );
    return;
  }
  await transitionJob(
    deps.db,
    job,
    {
      status: reviewers > 0 ? 'in_review' : 'checked',
      stage: reviewers > 0 ? `waiting for ${reviewers} reviewer(s)${review.heldBecause ? ` (${review.heldBecause})` : ''}` : null,
      statusCode,
      statusReason: null,
      output: { columns: checked.columns, rows: checked.rows },
      manifest: checked.manifest,
      reviewersRequired: reviewers,
      finishedAt,
    },
    { actor: 'system', at: finishedAt, details: { manifest: summary(checked.manifest), reviewersRequired: reviewers }, onlyFrom: ['running'] },
  );
  if (reviewers === 0) {
    try {
      await releaseJob(deps, job.id, 'system');
    } catch (error) {
      const kinds = { LICENCE_NOT_IN_FORCE: 'licence_inactive_at_release', CATALOGUE_CHANGED: 'catalogue_changed_at_release', POLICY_CHANGED: 'policy_changed_at_release' } as const;
      const kind = error instanceof AppError ? kinds[error.code as keyof typeof kinds] : undefined;
      if (!kind) throw error;
      // Changed while the job ran: what it computed is dropped, not kept for a later release.
      await failJob(deps, job, { kind, internalDetail: `${(error as AppError).message} (at ${deps.clock().toISOString()}, when the output was to be released)` }, ['checked']);
    }
  }
}

function summary(manifest: { contentHash: string | null; rowCount: number; columnCount: number; suppressedByCode: object }) {
  return { contentHash: manifest.contentHash, rowCount: manifest.rowCount, columnCount: manifest.columnCount, suppressedByCode: manifest.suppressedByCode };
}
