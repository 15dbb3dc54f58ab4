import type { Platform } from '../platform.js';
import { createSandboxPool } from '../sandbox/sandbox-pool.js';
import { startJobQueue } from './job-queue.js';
import { and, eq, lt } from 'drizzle-orm';
import { jobs } from '../db/schema.js';
import { transitionJob } from '../release/release-job.js';
import type { JobQueue } from './job-queue.js';
import { runJob } from './run-job.js';

/**
 * Starts the queue and, unless `workers` is 0, the workers that take jobs from it: one polling loop per sandbox
 * process. `pds serve` starts both in one process (the embedded default); `pds worker` starts workers alone.
 */
export async function startJobRuntime(platform: Platform, options: { workers: number }) {
  const queue = await startJobQueue(platform.controlPlane);
  platform.jobQueue = queue;
  const pool = options.workers > 0 ? createSandboxPool({ size: options.workers }) : undefined;
  if (pool) {
    await recoverInterruptedJobs(platform, queue);
    await pool.warm();
    const dependencies = { db: platform.db, store: platform.store, pool, disclosurePolicy: platform.disclosurePolicy, keys: platform.keys, clock: platform.clock };
    await queue.work(options.workers, (jobId) => runJob(dependencies, jobId));
  }
  return {
    queue,
    pool,
    async stop(): Promise<void> {
      await queue.stop();
      await pool?.close();
      platform.jobQueue = undefined;
    },
  };
}

/**
 * After a crash: a job still "running" long after any wall-time limit lost its worker, and fails as a system
 * failure (never partial output); a job still "queued" is queued again (the queue drops repeats by job id).
 */
async function recoverInterruptedJobs(platform: Platform, queue: JobQueue): Promise<void> {
  const longestWall = Math.max(...Object.values(platform.disclosurePolicy.grades).map((grade) => grade.limits.wallSeconds));
  const cutoff = new Date(platform.clock().getTime() - (longestWall + 120) * 1000);
  const stale = await platform.db.select().from(jobs).where(and(eq(jobs.status, 'running'), lt(jobs.startedAt, cutoff)));
  for (const job of stale) {
    await transitionJob(
      platform.db,
      job,
      { status: 'failed', stage: null, statusCode: 'SYSTEM_FAILURE', statusReason: 'the worker running this job stopped; it was not caused by the query', finishedAt: platform.clock() },
      { actor: 'system', at: platform.clock(), details: { code: 'SYSTEM_FAILURE', recovered: true }, onlyFrom: ['running'] },
    );
  }
  const waiting = await platform.db.select({ id: jobs.id }).from(jobs).where(and(eq(jobs.status, 'queued'), lt(jobs.createdAt, new Date(platform.clock().getTime() - 60_000))));
  for (const job of waiting) await queue.enqueue(job.id);
}
