import fs from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { createPlatform } from '../../src/bootstrap.js';
import { loadConfig } from '../../src/config/config.js';
import { openControlPlane, type ControlPlane } from '../../src/db/connect.js';
import { createScratchDatabase } from '../../src/db/scratch-database.js';
import { seedDemo } from '../../src/demo/seed-demo.js';
import { createApp } from '../../src/http/app.js';
import { ephemeralKeyRing, type KeyRing } from '../../src/identity/keys.js';
import { mintToken } from '../../src/identity/tokens.js';
import type { Platform } from '../../src/platform.js';
import { startJobRuntime } from '../../src/jobs/job-runtime.js';
import { findJob } from '../../src/jobs/submit-job.js';
import { eq } from 'drizzle-orm';
import { jobs, principals } from '../../src/db/schema.js';
import { runJob } from '../../src/jobs/run-job.js';
import { createSandboxPool } from '../../src/sandbox/sandbox-pool.js';

export const usingPostgres = Boolean(process.env.DATABASE_URL);

/** A control plane of its own for one test file: a PGlite started from the migrated template, or a new PostgreSQL database. */
async function openTestControlPlane(embedded = false): Promise<{ controlPlane: ControlPlane; dispose: () => Promise<void>; url?: string }> {
  const url = process.env.DATABASE_URL;
  if (embedded && url) {
    // No template is built when the run is on PostgreSQL: a fresh PGlite, migrated by createPlatform.
    const controlPlane = await openControlPlane({ kind: 'pglite' });
    return { controlPlane, dispose: () => controlPlane.close() };
  }
  if (!url) {
    const template = fs.readFileSync(inject('pgliteTemplate'));
    const controlPlane = await openControlPlane({ kind: 'pglite', loadDataDir: new Blob([template]) });
    return { controlPlane, dispose: () => controlPlane.close() };
  }
  const scratch = await createScratchDatabase(url, 'pds_test');
  const controlPlane = await openControlPlane({ kind: 'postgres', url: scratch.url, poolSize: 5 });
  return {
    controlPlane,
    url: scratch.url,
    dispose: async () => {
      await controlPlane.close();
      await scratch.drop();
    },
  };
}

export type TestPlatform = Awaited<ReturnType<typeof createTestPlatform>>;

/** Calls an app in-process, as a client would over HTTP. */
function callerOf(app: ReturnType<typeof createApp>) {
  return async (method: string, url: string, options: { token?: string; json?: unknown; body?: BodyInit; headers?: Record<string, string> } = {}) => {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    let body = options.body;
    if (options.json !== undefined) {
      headers['content-type'] = 'application/json';
      body = JSON.stringify(options.json);
    }
    const response = await app.request(url, { method, headers, ...(body !== undefined ? { body } : {}) });
    const text = await response.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json, text, headers: response.headers };
  };
}

/**
 * One platform per test file: its own data directory, control plane, in-memory keys and a clock tests can move.
 * With `demo`, the demo catalogue, principals and licences are seeded, with the data at a tiny scale.
 */
export async function createTestPlatform(
  options: {
    demo?: boolean;
    environment?: Record<string, string>;
    now?: Date;
    /** The platform follows real time instead of a clock tests move: for tokens stamped elsewhere with real time. */
    realClock?: boolean;
    workers?: number;
    keys?: KeyRing;
    embedded?: boolean;
  } = {},
) {
  const dataDir = fs.mkdtempSync(path.join(inject('testRoot'), 'data-'));
  // The demo's records end on a fixed day, so expectations on them hold whenever the tests run.
  const config = loadConfig({ DATA_DIR: dataDir, PDS_DEMO_SCALE: '0.001', PDS_DEMO_END: '2024-12-31', ...options.environment });
  const { controlPlane, dispose, url: databaseUrl } = await openTestControlPlane(options.embedded);
  const clock: { now: Date } = options.realClock
    ? {
        get now() {
          return new Date();
        },
        set now(_: Date) {
          throw new Error('this test platform runs on the real clock');
        },
      }
    : { now: options.now ?? new Date() };
  const platform: Platform = await createPlatform(config, {
    controlPlane,
    keys: options.keys ?? (await ephemeralKeyRing()),
    clock: () => clock.now,
  });
  if (options.demo) await seedDemo(platform);
  // The queue always runs (submissions need it); sandbox workers only where a test asks for them.
  const runtime = await startJobRuntime(platform, { workers: options.workers ?? 0 });
  const app = createApp(platform);
  const tokenSettings = { issuer: config.tokenIssuer, audience: config.tokenAudience, maxAgeSeconds: config.tokenMaxAgeSeconds };

  return {
    platform,
    app,
    clock,
    dataDir,
    /** PostgreSQL only: the URL of this file's own database. */
    databaseUrl,
    tokenFor: (principalId: string) => mintToken(platform.keys, tokenSettings, principalId, { now: clock.now }),
    /** Calls the app in-process, as a client would over HTTP. */
    call: callerOf(app),
    /**
     * A second API process over the same database, data directory and keys, as a second `pds serve` would be:
     * its own product service, counters and caches (on PostgreSQL its own connections too).
     */
    async anotherApiProcess(options: { keys?: KeyRing } = {}) {
      const ownControlPlane = databaseUrl ? await openControlPlane({ kind: 'postgres', url: databaseUrl, poolSize: 2 }) : undefined;
      const other = await createPlatform(config, { controlPlane: ownControlPlane ?? controlPlane, keys: options.keys ?? platform.keys, clock: () => clock.now });
      const otherApp = createApp(other);
      return {
        platform: other,
        app: otherApp,
        call: callerOf(otherApp),
        async close() {
          await other.products.ledger.drain();
          other.parser.close();
          await other.bindCheck.close();
          await other.products.sealEvaluator.close();
          await ownControlPlane?.close();
        },
      };
    },
    runtime,
    /** Tokens of two regulators, the demo's and a second one created on first use: L4 outputs need two reviewers. */
    async twoRegulators(): Promise<[string, string]> {
      await platform.db.insert(principals).values({ id: 'regulator-second', role: 'regulator', displayName: 'Second reviewer' }).onConflictDoNothing();
      return [await this.tokenFor('regulator-data-dept'), await this.tokenFor('regulator-second')];
    },
    /** Polls a job until it settles: not queued, running, or checked (checked is released at once where no review is needed). */
    async waitForJob(jobId: string, timeoutMilliseconds = 60_000) {
      const deadline = Date.now() + timeoutMilliseconds;
      for (;;) {
        const job = await findJob(platform, jobId);
        const settling = job && (job.status === 'queued' || job.status === 'running' || (job.status === 'checked' && job.reviewersRequired === 0));
        if (job && !settling) return job;
        if (Date.now() > deadline) throw new Error(`job ${jobId} did not finish in time (status ${job?.status})`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    /**
     * Puts a finished job back in the queue with another plan — as a job queued before an upgrade would be — and
     * runs it once on a sandbox pool of its own (the platform's workers are not involved).
     */
    async rerunWithPlan(jobId: string, plan: unknown) {
      await platform.db.update(jobs).set({ status: 'queued', plan }).where(eq(jobs.id, jobId));
      const pool = createSandboxPool({ size: 1 });
      try {
        const { db, store, disclosurePolicy, keys, clock } = platform;
        await runJob({ db, store, pool, disclosurePolicy, keys, clock }, jobId);
      } finally {
        await pool.close();
      }
      return findJob(platform, jobId);
    },
    async close() {
      await runtime.stop();
      platform.parser.close();
      await platform.bindCheck.close();
      await platform.products.sealEvaluator.close();
      await dispose();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
