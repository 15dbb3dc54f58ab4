import PgBoss from 'pg-boss';
import type { ControlPlane } from '../db/connect.js';

const queueName = 'analysis-jobs';

/**
 * The job queue: pg-boss on the control-plane database (PostgreSQL, or PGlite through pg-boss's `db`
 * adapter), so any number of `pds worker` processes sharing one PostgreSQL take jobs, each exactly once.
 */
export async function startJobQueue(controlPlane: ControlPlane) {
  const boss = new PgBoss({ db: { executeSql: (text: string, values: unknown[]) => controlPlane.executeSql(text, values) }, schedule: false, supervise: true });
  boss.on('error', () => {
    // pg-boss reports transient maintenance errors here; the next poll retries. Never let them crash the server.
  });
  await boss.start();
  if (!(await boss.getQueue(queueName))) await boss.createQueue(queueName);
  return {
    async enqueue(jobId: string): Promise<void> {
      // singletonKey: a job queued twice (recovery after a crash) is taken once.
      await boss.send(queueName, { jobId }, { retryLimit: 0, expireInSeconds: 3600, singletonKey: jobId });
    },
    /** Starts `concurrency` polling loops that hand job ids to `handle`, one at a time each. */
    async work(concurrency: number, handle: (jobId: string) => Promise<void>): Promise<void> {
      for (let i = 0; i < concurrency; i++) {
        await boss.work<{ jobId: string }>(queueName, { batchSize: 1, pollingIntervalSeconds: 0.5 }, async ([job]) => {
          if (job) await handle(job.data.jobId);
        });
      }
    },
    /**
     * Stops taking jobs and lets the ones in hand finish (up to 30 s), so that none completes against a database
     * that has already been closed; what is still running then is recovered as interrupted at the next start.
     */
    async stop(): Promise<void> {
      await boss.stop({ graceful: true, wait: true, timeout: 30_000, close: false });
    },
  };
}

export type JobQueue = Awaited<ReturnType<typeof startJobQueue>>;
