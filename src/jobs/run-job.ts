import { and, eq, inArray } from 'drizzle-orm';
import { sandboxQueries, type ExecutionPlan } from '../analysis/execution-plan.js';
import type { Database } from '../db/connect.js';
import { jobs } from '../db/schema.js';
import { checkOutput } from '../disclosure/disclosure-control.js';
import type { SnapshotStore } from '../domain-store/snapshot-store.js';
import type { DisclosurePolicy } from '../policy/disclosure-policy.js';
import type { SandboxPool } from '../sandbox/sandbox-pool.js';

export type JobRunnerDependencies = {
  db: Database;
  store: SnapshotStore;
  pool: SandboxPool;
  disclosurePolicy: DisclosurePolicy;
  clock: () => Date;
};

/** What an operator is told when its job fails: a stable code and a reason that carries no data. */
const failureText = {
  query_error: {
    code: 'QUERY_FAILED',
    reason: 'the query failed while running (for example a failed cast, an arithmetic error or the memory limit); the details are kept for regulators',
  },
  time_limit: { code: 'TIME_LIMIT', reason: 'the query ran past the wall-time limit of its grade and was stopped' },
  system_error: { code: 'SYSTEM_FAILURE', reason: 'a platform failure stopped the job; it was not caused by the query' },
} as const;

/**
 * Runs one queued job: sandbox, then disclosure control, then the stored result. Idempotent: a job that is
 * already finished is left alone, so a redelivered queue message does nothing.
 */
export async function runJob(deps: JobRunnerDependencies, jobId: string): Promise<void> {
  const { db } = deps;
  const [job] = await db
    .update(jobs)
    .set({ status: 'running', stage: 'running in the sandbox', startedAt: deps.clock() })
    .where(and(eq(jobs.id, jobId), inArray(jobs.status, ['queued', 'running'])))
    .returning();
  if (!job) return;
  const plan = job.plan as ExecutionPlan;
  const grade = job.grade!;
  const gradePolicy = deps.disclosurePolicy.grades[grade];
  const queries = sandboxQueries(plan);
  const outcome = await deps.pool.run({
    jobId,
    snapshots: Object.entries(job.datasetVersions).map(([datasetId, contentHash]) => ({ datasetId, path: deps.store.snapshotPath(datasetId, contentHash) })),
    queries,
    limits: gradePolicy.limits,
  });
  const finishedAt = deps.clock();
  if (!outcome.ok) {
    const text = failureText[outcome.kind];
    await db
      .update(jobs)
      .set({ status: 'failed', stage: null, statusCode: text.code, statusReason: text.reason, internalDetail: outcome.internalDetail, finishedAt })
      .where(eq(jobs.id, jobId));
    return;
  }
  await db.update(jobs).set({ stage: 'disclosure control' }).where(eq(jobs.id, jobId));
  const checked = checkOutput({ plan, results: outcome.results, grade: gradePolicy, gradeName: grade, policyHash: job.policyHash });
  if (checked.outcome === 'withheld') {
    await db
      .update(jobs)
      .set({ status: 'withheld', stage: null, statusCode: checked.code, statusReason: checked.reason, manifest: checked.manifest, finishedAt })
      .where(eq(jobs.id, jobId));
    return;
  }
  await db
    .update(jobs)
    .set({
      status: 'succeeded',
      stage: null,
      statusCode: checked.manifest.suppressedRows.length > 0 ? 'RELEASED_WITH_SUPPRESSION' : 'RELEASED',
      statusReason: null,
      output: { columns: checked.columns, rows: checked.rows },
      manifest: checked.manifest,
      finishedAt,
    })
    .where(eq(jobs.id, jobId));
}
