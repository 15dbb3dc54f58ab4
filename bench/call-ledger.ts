/**
 * The product-call ledger's write cost: what one committed batch of calls (the shared quotas settled, audit
 * leaves and metering rows written, one transaction) costs on the control plane, for a single call and for a
 * batch the size bench/products sees (about 24 calls with 50 connections). Shows the fixed cost per transaction against the cost per call, which
 * is what decides how far plain verification can approach the trivial route (docs/products.md).
 *
 *   npm run bench -- call-ledger          (PGlite, the embedded default)
 *   DATABASE_URL=postgres://… npm run bench -- call-ledger    (a scratch database on that server, dropped after)
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPlatform } from '../src/bootstrap.js';
import { loadConfig } from '../src/config/config.js';
import { principals } from '../src/db/schema.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { seedDemo } from '../src/demo/seed-demo.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-bench-ledger-'));
const scratch = process.env.DATABASE_URL ? await createScratchDatabase(process.env.DATABASE_URL, 'pds_bench') : undefined;
const platform = await createPlatform(loadConfig({ DATA_DIR: dataDir, PDS_DEMO_SCALE: '0.01', ...(scratch ? { DATABASE_URL: scratch.url } : {}) }));
await seedDemo(platform);
await platform.db.insert(principals).values({ id: 'bench-consumer', role: 'consumer', displayName: 'bench consumer' }).onConflictDoNothing();
const ledger = platform.products.ledger;
const replays = platform.products.callReplays;
/** BENCH_KEYED=1: every call carries an Idempotency-Key, so its answer is kept for retries too. */
const keyed = process.env.BENCH_KEYED === '1';

/** `rounds` batches of `size` calls; each batch is recorded at once, so the ledger commits it as one. */
async function recordBatches(size: number, rounds: number): Promise<void> {
  for (let round = 0; round < rounds; round++) {
    await Promise.all(
      Array.from({ length: size }, () => {
        const subject = crypto.randomBytes(16).toString('hex');
        const calledAt = new Date();
        return ledger.record({
          call: { id: `call_${crypto.randomUUID()}`, productId: 'resident-identity', consumerId: 'bench-consumer', mode: 'plain', use: 'industry', purpose: 'benchmark', subjectHash: subject, match: true, requestHash: crypto.randomBytes(32).toString('hex'), calledAt },
          claim: { consumerId: 'bench-consumer', productId: 'resident-identity', use: 'industry', at: calledAt, subject: { hash: subject, dailyLimit: 5 } },
          event: (feeFen) => ({ type: 'product.called', actor: 'bench-consumer', operator: 'lingang-analytics', datasets: ['residents'], details: { product: 'resident-identity', mode: 'plain', use: 'industry', subject, request_hash: 'x'.repeat(64), fee_fen: feeFen, match: true } }),
          // A plain answer's kept parts are about 375 bytes sealed (call-replays.ts).
          ...(keyed ? { retry: { key: replays.retryKey('bench-consumer', crypto.randomUUID(), { subject }), sealed: crypto.randomBytes(375) } } : {}),
        });
      }),
    );
  }
}

console.log(`control plane: ${platform.controlPlane.kind}${keyed ? ', each call with an Idempotency-Key' : ''}`);
await recordBatches(24, 20); // warm-up
const results = new Map<number, number>();
for (const size of [1, 24, 1, 24]) {
  const rounds = size === 1 ? 300 : 150;
  const started = performance.now();
  await recordBatches(size, rounds);
  results.set(size, (performance.now() - started) / rounds); // the later run of each size is kept
}
const single = results.get(1)!;
const batch = results.get(24)!;
console.log(`one call per transaction: ${single.toFixed(2)} ms`);
console.log(`24 calls per transaction: ${batch.toFixed(2)} ms (${((batch * 1000) / 24).toFixed(0)} µs per call)`);
console.log(`so about ${single.toFixed(2)} ms fixed per transaction and ${(((batch - single) * 1000) / 23).toFixed(0)} µs per further call`);
await platform.controlPlane.close();
await scratch?.drop();
fs.rmSync(dataDir, { recursive: true, force: true });
