import PgBoss from 'pg-boss';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { shuttableDb } from '../../src/jobs/job-queue.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform({});
});
afterAll(() => t?.close());

describe('the queue once stopped', () => {
  it("answers pg-boss's late bookkeeping of a fetched job without an error and without reaching the database", async () => {
    let reached = 0;
    const db = shuttableDb({ executeSql: (text, values) => (reached++, t.platform.controlPlane.executeSql(text, values)) });
    const boss = new PgBoss({ db: { executeSql: db.executeSql }, schedule: false, supervise: false });
    await boss.start();
    try {
      if (!(await boss.getQueue('shutdown-test'))) await boss.createQueue('shutdown-test');
      const id = (await boss.send('shutdown-test', { jobId: 'x' }))!;
      db.shut();
      const before = reached;
      // What pg-boss does with a job a fetch in flight handed over after stop(): fail it (the handler refuses it) or complete it.
      await expect(boss.fail('shutdown-test', id, new Error('the queue is stopping'))).resolves.toMatchObject({ affected: 0 });
      await expect(boss.complete('shutdown-test', id)).resolves.toMatchObject({ affected: 0 });
      await expect(boss.fetch('shutdown-test')).resolves.toEqual([]);
      expect(reached).toBe(before);
    } finally {
      await boss.stop({ graceful: false, wait: true, close: false });
    }
  });
});
