import PgBoss from 'pg-boss';
import type { ControlPlane } from '../db/connect.js';

const queueName = 'analysis-jobs';

/**
 * pg-boss's database adapter, which can be shut: pg-boss completes or fails a job without awaiting it, and a fetch in
 * flight when stop() begins can still hand over a job after stop() has returned. Once shut, its bookkeeping must not
 * reach a database the caller is closing (on PostgreSQL: "Cannot use a pool after calling end", an unhandled
 * rejection seen once in CI). A shut adapter answers with no result at all: pg-boss reads that as "no job" (fetch)
 * and "nothing changed" (complete, fail). An empty row list would not do: complete and fail read the first row's
 * count, and threw an unhandled TypeError (seen in CI). A job left so is still `queued` in the jobs table and is
 * queued again at the next start (job-runtime.ts).
 */
export function shuttableDb(controlPlane: Pick<ControlPlane, 'executeSql'>) {
  let shut = false;
  return {
    // Typed as pg-boss declares its adapter; its code reads the absent result as said above.
    executeSql: (text: string, values: unknown[]) => (shut ? Promise.resolve(undefined as unknown as { rows: unknown[] }) : controlPlane.executeSql(text, values)),
    shut: () => void (shut = true),
  };
}

/**
 * The job queue: pg-boss on the control-plane database (PostgreSQL, or PGlite through pg-boss's `db`
 * adapter), so any number of `pds worker` processes sharing one PostgreSQL take jobs, each exactly once.
 */
export async function startJobQueue(controlPlane: ControlPlane) {
  let stopping = false;
  const db = shuttableDb(controlPlane);
  const boss = new PgBoss({ db: { executeSql: db.executeSql }, schedule: false, supervise: true });
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
          // Taken while stopping: not run (pg-boss fails it; the job is queued again at the next start).
          if (stopping) throw new Error('the queue is stopping');
          if (job) await handle(job.data.jobId);
        });
      }
    },
    /**
     * Stops taking jobs and lets the ones in hand finish (up to 30 s), so that none completes against a database
     * that has already been closed; what is still running then is recovered as interrupted at the next start.
     */
    async stop(): Promise<void> {
      stopping = true;
      await boss.stop({ graceful: true, wait: true, timeout: 30_000, close: false });
      db.shut();
    },
  };
}

export type JobQueue = Awaited<ReturnType<typeof startJobQueue>>;
