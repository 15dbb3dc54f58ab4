/**
 * Product calls over real HTTP, in one run:
 *  - plain verification requests/s against a trivial hono route on the same server (target ≥ 50 %), with
 *    authentication, authorization, quotas, the lookup, signing, metering and the audit leaf all on;
 *  - p50/p99 latency of each;
 *  - server time and payload sizes of an encrypted verification and of an encrypted score.
 *
 * Run: npm run bench -- products   (or: npx tsx bench/products.ts)
 * The server runs on this thread (PGlite, the embedded default); the load comes from a worker thread with 50
 * keep-alive connections, one consumer each (so per-consumer rate limits are not what is measured). Every
 * verified claim is a true one, spread over the demo residents so no subject passes its daily limit and the
 * probing detector stays quiet, as with honest traffic.
 * BENCH_KEYED=1 sends each plain call with its own Idempotency-Key, as the client library does, so that every
 * answer is also kept for retries (src/products/call-replays.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { DuckDBInstance } from '@duckdb/node-api';
import { serve } from '@hono/node-server';
import { createPlatform } from '../src/bootstrap.js';
import { loadConfig } from '../src/config/config.js';
import { eq } from 'drizzle-orm';
import { principals } from '../src/db/schema.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { seedDemo } from '../src/demo/seed-demo.js';
import { createApp } from '../src/http/app.js';
import { mintToken } from '../src/identity/tokens.js';
import { createVerificationClient } from '../src/products/client/verification-client.js';
import { loadSeal } from '../src/products/seal-loader.js';

const connections = 50;
const seconds = Number(process.env.BENCH_SECONDS ?? 8);
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-bench-products-'));
// PostgreSQL when DATABASE_URL is set (a scratch database, dropped at the end); else PGlite, the embedded default.
const scratch = process.env.DATABASE_URL ? await createScratchDatabase(process.env.DATABASE_URL, 'pds_bench') : undefined;
const config = loadConfig({ DATA_DIR: dataDir, PDS_DEMO_SCALE: process.env.PDS_DEMO_SCALE ?? '0.1', ...(scratch ? { DATABASE_URL: scratch.url } : {}) });
console.log(`control plane: ${scratch ? 'PostgreSQL' : 'PGlite'}`);
console.log(`preparing demo data at scale ${process.env.PDS_DEMO_SCALE ?? '0.1'} in ${dataDir} (not timed)`);
const platform = await createPlatform(config);
await seedDemo(platform);
const consumerIds = Array.from({ length: connections }, (_, index) => `bench-consumer-${index}`);
await platform.db.insert(principals).values(consumerIds.map((id) => ({ id, role: 'consumer' as const, displayName: id }))).onConflictDoNothing();
const tokenSettings = { issuer: config.tokenIssuer, audience: config.tokenAudience, maxAgeSeconds: config.tokenMaxAgeSeconds };
const tokens = await Promise.all(consumerIds.map((id) => mintToken(platform.keys, tokenSettings, id)));

// True claims, read from the snapshot as only a benchmark or test may.
const version = (await platform.analysisCatalogue()).latestVersions.get('residents')!;
const duck = await DuckDBInstance.create(':memory:');
const connection = await duck.connect();
await connection.run(`ATTACH '${platform.store.snapshotPath('residents', version)}' AS s (READ_ONLY)`);
const people = (await connection.runAndReadAll('SELECT resident_id, name FROM s.data ORDER BY hash(resident_id)')).getRows().map(([id, name]) => ({ id: String(id), name: String(name) }));
duck.closeSync();

const app = createApp(platform);
app.get('/bench/trivial', (c) => c.json({ ok: true }));
// For reference only: the same request shape as a verification (POST, bearer header, JSON body read).
app.post('/bench/trivial-post', async (c) => c.json({ ok: Object.keys(await c.req.json()).length }));
const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
await new Promise<void>((resolve) => server.once('listening', () => resolve()));
const port = (server.address() as { port: number }).port;
const base = `http://127.0.0.1:${port}`;

// Build the verification index before measuring (it is built once per product and data version).
await fetch(`${base}/v1/products/resident-identity/verify`, {
  method: 'POST',
  headers: { authorization: `Bearer ${tokens[0]}`, 'content-type': 'application/json' },
  body: JSON.stringify({ input: { id_number: people[0]!.id, name: people[0]!.name }, purpose: 'warm-up' }),
});

type LoadResult = { requests: number; errors: number; statuses: Record<string, number>; latencies: number[]; seconds: number };

function load(target: 'trivial' | 'post' | 'verify'): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(
      `
      const { parentPort, workerData } = require('node:worker_threads');
      const http = require('node:http');
      const agent = new http.Agent({ keepAlive: true, maxSockets: workerData.connections });
      const latencies = [];
      const statuses = {};
      let requests = 0, errors = 0, next = 0;
      const deadline = performance.now() + workerData.seconds * 1000;
      function one(slot) {
        if (performance.now() > deadline || (workerData.target === 'verify' && next >= workerData.people.length * 4)) return Promise.resolve();
        const started = performance.now();
        let options, body;
        if (workerData.target === 'post') {
          body = JSON.stringify({ input: { id_number: 'x', name: 'y' }, purpose: 'benchmark' });
          options = { method: 'POST', path: '/bench/trivial-post', headers: { authorization: 'Bearer ' + workerData.tokens[slot], 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } };
        } else if (workerData.target === 'trivial') {
          options = { method: 'GET', path: '/bench/trivial' };
        } else {
          const person = workerData.people[next++ % workerData.people.length];
          body = JSON.stringify({ input: { id_number: person.id, name: person.name }, purpose: 'benchmark' });
          options = { method: 'POST', path: '/v1/products/resident-identity/verify', headers: { authorization: 'Bearer ' + workerData.tokens[slot], 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(workerData.keyed ? { 'idempotency-key': 'bench-' + next + '-' + Math.random() } : {}) } };
        }
        return new Promise((done) => {
          const request = http.request({ host: '127.0.0.1', port: workerData.port, agent, ...options }, (response) => {
            response.resume();
            response.on('end', () => {
              requests++;
              statuses[response.statusCode] = (statuses[response.statusCode] || 0) + 1;
              if (response.statusCode !== 200) errors++;
              latencies.push(performance.now() - started);
              done();
            });
          });
          request.on('error', () => { errors++; done(); });
          if (body) request.write(body);
          request.end();
        }).then(() => one(slot));
      }
      const started = performance.now();
      Promise.all(Array.from({ length: workerData.connections }, (_, slot) => one(slot))).then(() => {
        parentPort.postMessage({ requests, errors, statuses, latencies, seconds: (performance.now() - started) / 1000 });
        agent.destroy();
      });
      `,
      { eval: true, workerData: { target, port, connections, seconds, tokens, people, keyed: process.env.BENCH_KEYED === '1' } },
    );
    worker.once('message', resolve);
    worker.once('error', reject);
  });
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
};
const describe = (label: string, result: LoadResult) => {
  const rate = result.requests / result.seconds;
  console.log(
    `${label.padEnd(34)} ${rate.toFixed(0).padStart(6)} req/s   p50 ${percentile(result.latencies, 50).toFixed(2)} ms   p99 ${percentile(result.latencies, 99).toFixed(2)} ms   (${result.requests} requests, non-200: ${JSON.stringify(Object.fromEntries(Object.entries(result.statuses).filter(([status]) => status !== '200')))})`,
  );
  return rate;
};

console.log(`\nload: ${connections} keep-alive connections from a worker thread, up to ${seconds} s each, server on the main thread`);
// BENCH_PLAIN_ONLY (for profiling the verification alone) skips the baseline, and with it the ratio.
const trivial = process.env.BENCH_PLAIN_ONLY ? undefined : describe('trivial hono route', await load('trivial'));
if (!process.env.BENCH_PLAIN_ONLY) describe('trivial POST reading a JSON body', await load('post'));
const queryCounts = new Map<string, number>();
if (process.env.BENCH_COUNT_QUERIES) {
  const { PGlite } = await import('@electric-sql/pglite');
  for (const method of ['query', 'exec', 'transaction'] as const) {
    const original = (PGlite.prototype as any)[method];
    (PGlite.prototype as any)[method] = function (this: unknown, ...args: unknown[]) {
      const key = `${method} ${String(args[0]).slice(0, 60).replace(/\s+/g, ' ')}`;
      queryCounts.set(key, (queryCounts.get(key) ?? 0) + 1);
      const started = performance.now();
      const result = original.apply(this, args);
      // Wall time from the call to its settling, waits for PGlite's mutex included.
      void Promise.resolve(result).finally(() => queryCounts.set(`${key} (ms, total)`, (queryCounts.get(`${key} (ms, total)`) ?? 0) + performance.now() - started));
      return result;
    };
  }
}
let session: import('node:inspector/promises').Session | undefined;
if (process.env.BENCH_PROFILE) {
  const inspector = await import('node:inspector/promises');
  session = new inspector.Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
}
const verify = describe(`plain verification (resident-identity)${process.env.BENCH_KEYED === '1' ? ', each call with an Idempotency-Key' : ''}`, await load('verify'));
if (queryCounts.size > 0) for (const [key, count] of [...queryCounts].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(String(Math.round(count)).padStart(6), key);
if (session) {
  const { profile } = await session.post('Profiler.stop');
  fs.writeFileSync(process.env.BENCH_PROFILE!, JSON.stringify(profile));
}
await platform.products.ledger.drain();
if (trivial !== undefined) console.log(`plain verification / trivial route: ${((verify / trivial) * 100).toFixed(1)} % (target ≥ 50 %)`);

if (process.env.BENCH_PLAIN_ONLY) {
  server.close();
  await platform.controlPlane.close();
  await scratch?.drop();
  process.exit(0);
}

// Encrypted verification: the client's own work is timed apart from the request.
const seal = await loadSeal();
const client = createVerificationClient({ baseUrl: base, token: tokens[1]!, seal });
const encryptedTimes: number[] = [];
let sizes = { requestBytes: 0, answerBytes: 0 };
for (let round = 0; round < 5; round++) {
  const person = people[people.length - 1 - round]!;
  const started = performance.now();
  const answer = await client.verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'benchmark');
  encryptedTimes.push(performance.now() - started);
  if (!answer.match) throw new Error('an encrypted verification of a true claim did not match');
  sizes = { requestBytes: answer.requestBytes, answerBytes: answer.answerBytes };
}
// The same call with the public key sent along (no registered key), for its size.
const inlineRequestBytes = await (async () => {
  const person = people[people.length - 6]!;
  const inline = createVerificationClient({ baseUrl: base, token: tokens[1]!, seal, registerKeys: false });
  return (await inline.verifyEncrypted('resident-identity', { id_number: person.id, name: person.name }, 'benchmark')).requestBytes;
})();
// Server time alone: the same evaluation the route runs, without the client's key generation and decryption.
const serverTimes: number[] = [];
const keptServerTimes: number[] = [];
{
  const { createBfvContext, plaintextOf, toBase64 } = await import('../src/products/client/bfv.js');
  const bfv = createBfvContext(seal);
  const keys = seal.KeyGenerator(bfv.context);
  const encryptor = seal.Encryptor(bfv.context, keys.createPublicKey(), keys.secretKey());
  const body = {
    subject: { id_number: people[1]!.id },
    ciphertext: toBase64(encryptor.encryptSymmetricSerializable(plaintextOf(bfv, [1n, 2n])).saveArray(seal.ComprModeType.none)),
    publicKey: toBase64(keys.createPublicKeySerializable().saveArray(seal.ComprModeType.none)),
    purpose: 'benchmark',
  };
  const product = (await import('../src/products/products.js')).findProduct;
  const row = (await product(platform, 'resident-identity'))!;
  const [consumer] = await platform.db.select().from(principals).limit(1);
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    await platform.products.verifyEncrypted({ ...consumer!, id: consumerIds[2 + round]! }, row, { ...body, subject: { id_number: people[10 + round]!.id }, use: 'industry' });
    serverTimes.push(performance.now() - started);
  }
  // Sent with an Idempotency-Key (as the client library sends every call), the answer is also kept for retries.
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    const request = { ...body, subject: { id_number: people[20 + round]!.id }, use: 'industry' as const };
    const retry = platform.products.callReplays.retryKey(consumerIds[2 + round]!, `bench-${round}-${Date.now()}`, { path: '/v1/products/resident-identity/verify-encrypted', body: request });
    await platform.products.verifyEncrypted({ ...consumer!, id: consumerIds[2 + round]! }, row, request, retry);
    keptServerTimes.push(performance.now() - started);
  }
}
console.log(
  `encrypted verification: server ${percentile(serverTimes, 50).toFixed(0)} ms (median of 5, incl. metering and audit; ${percentile(keptServerTimes, 50).toFixed(0)} ms with an Idempotency-Key, the answer kept for retries), round trip with client work ${percentile(encryptedTimes, 50).toFixed(0)} ms; request ${(sizes.requestBytes / 1024).toFixed(0)} KiB (JSON, base64, registered key; ${(inlineRequestBytes / 1024).toFixed(0)} KiB carrying the key), answer ${(sizes.answerBytes / 1024).toFixed(0)} KiB (zstd)`,
);
// Encrypted score: a linear model trained on the demo power readings, released, and published as a product.
{
  const { submitJob } = await import('../src/jobs/submit-job.js');
  const { startJobRuntime } = await import('../src/jobs/job-runtime.js');
  const { releaseJob } = await import('../src/release/release-job.js');
  const { defineProduct, decideProduct, publishProduct } = await import('../src/products/products.js');
  const runtime = await startJobRuntime(platform, { workers: 1 });
  const [analyst] = await platform.db.select().from(principals).where(eq(principals.id, 'analyst-lingang-analytics'));
  const [regulator] = await platform.db.select().from(principals).where(eq(principals.id, 'regulator-data-dept'));
  const { job } = await submitJob(platform, analyst!, {
    datasets: ['power_readings'],
    sql: "SELECT amount_due, kwh, CASE WHEN customer_type = 'enterprise' THEN 1 ELSE 0 END AS enterprise FROM power_readings",
    purpose: 'benchmark model',
    model: { type: 'linear', target: 'amount_due', features: ['kwh', 'enterprise'] },
  });
  const { findJob } = await import('../src/jobs/submit-job.js');
  for (let waited = 0; ; waited += 100) {
    const current = await findJob(platform, job.id);
    if (current && !['queued', 'running'].includes(current.status)) break;
    if (waited > 120_000) throw new Error('the model job did not finish');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await releaseJob(platform, job.id, regulator!.id);
  let product = await defineProduct(platform, analyst!, { id: 'bench-model', title: 'bench', titleZh: 'bench', terms: 'bench', spec: { kind: 'scoring', job: job.id, dailyCallsPerConsumer: 100 } });
  product = await decideProduct(platform, regulator!, product, { decision: 'approve', reason: 'bench' });
  await publishProduct(platform, analyst!, product, { action: 'publish' });
  await runtime.stop();
  const scorer = createVerificationClient({ baseUrl: base, token: tokens[3]!, seal });
  const scoreTimes: number[] = [];
  let scoreSizes = { requestBytes: 0, answerBytes: 0 };
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    const answer = await scorer.scoreEncrypted('bench-model', { kwh: 300 + round, enterprise: 0 }, 'benchmark');
    scoreTimes.push(performance.now() - started);
    scoreSizes = { requestBytes: answer.requestBytes, answerBytes: answer.answerBytes };
  }
  const inlineScorer = createVerificationClient({ baseUrl: base, token: tokens[3]!, seal, registerKeys: false });
  const inlineScoreBytes = (await inlineScorer.scoreEncrypted('bench-model', { kwh: 310, enterprise: 0 }, 'benchmark')).requestBytes;
  const serverScoreTimes: number[] = [];
  const { createCkksContext } = await import('../src/products/client/ckks.js');
  const { checkScoringRequest, scoreEncrypted } = await import('../src/products/encrypted-scoring.js');
  const ckks = createCkksContext(seal);
  const encoder = seal.CKKSEncoder(ckks.context);
  const keys = seal.KeyGenerator(ckks.context);
  const encryptor = seal.Encryptor(ckks.context, keys.createPublicKey(), keys.secretKey());
  const request = {
    ciphertext: encryptor.encryptSymmetricSerializable(encoder.encode(Float64Array.from([0, 300, 0]), ckks.scale)!).saveArray(seal.ComprModeType.none),
    publicKey: keys.createPublicKeySerializable().saveArray(seal.ComprModeType.none),
  };
  for (let round = 0; round < 5; round++) {
    const started = performance.now();
    scoreEncrypted(ckks, checkScoringRequest(ckks, request), [1, 0.6, 3]);
    serverScoreTimes.push(performance.now() - started);
  }
  console.log(
    `encrypted score: server ${percentile(serverScoreTimes, 50).toFixed(0)} ms (checks and evaluation, median of 5), round trip with client work ${percentile(scoreTimes, 50).toFixed(0)} ms; request ${(scoreSizes.requestBytes / 1024).toFixed(0)} KiB (JSON, base64, registered key; ${(inlineScoreBytes / 1024).toFixed(0)} KiB carrying the key), answer ${(scoreSizes.answerBytes / 1024).toFixed(0)} KiB (zstd)`,
  );
}

server.close();
await platform.controlPlane.close();
await scratch?.drop();
fs.rmSync(dataDir, { recursive: true, force: true });
process.exit(0);
