import type { Platform } from '../platform.js';
import { createSandboxPool } from '../sandbox/sandbox-pool.js';
import { startJobQueue } from './job-queue.js';
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
    await pool.warm();
    const dependencies = { db: platform.db, store: platform.store, pool, disclosurePolicy: platform.disclosurePolicy, clock: platform.clock };
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
