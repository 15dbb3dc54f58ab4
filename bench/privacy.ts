/**
 * The differencing guard's cost per new output cell with 1,000, 10,000 and 100,000 prior released cells, and a
 * differentially private job's run against the same job without DP (both through the sandbox, in one run).
 *
 *   npx tsx bench/privacy.ts
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { sandboxQueries } from '../src/analysis/execution-plan.js';
import { createPlatform } from '../src/bootstrap.js';
import { loadConfig } from '../src/config/config.js';
import { jobs, licences, releasedCells } from '../src/db/schema.js';
import { seedDemo } from '../src/demo/seed-demo.js';
import { findPrincipal } from '../src/identity/principals.js';
import { planJob, prepareJob } from '../src/jobs/prepare-job.js';
import { SKETCH_LAYOUT, sketchOfKeys, type Sketch } from '../src/privacy/contributor-sketch.js';
import { setBudgetCap } from '../src/privacy/budget-ledger.js';
import { cellsToGuard, guardKeyOf, sealSketch } from '../src/privacy/differencing-guard.js';
import { createSandboxPool } from '../src/sandbox/sandbox-pool.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-bench-privacy-'));
const platform = await createPlatform(loadConfig({ DATA_DIR: dataDir, DATABASE_URL: '', PDS_DEMO_SCALE: process.env.PDS_DEMO_SCALE ?? '0.2' }));
await seedDemo(platform);
const db = platform.db;
const threshold = 20;
// The sketch size the policy sets.
const buckets = threshold * platform.disclosurePolicy.differencingGuard.bucketsPerThreshold;

const sketchOf = (keys: bigint[]): Sketch => sketchOfKeys(keys, buckets);
const key = guardKeyOf(platform.keys);
const randomKeys = (count: number) => Array.from({ length: count }, () => crypto.randomBytes(8).readBigUInt64LE());

// A released job to hang prior cells on.
const [anyJob] = await db.select().from(jobs).limit(1);
const jobId = anyJob?.id ?? 'bench-job';
if (!anyJob) {
  await db.insert(jobs).values({
    id: jobId, operatorId: 'lingang-analytics', submittedBy: 'analyst-lingang-analytics', datasets: ['residents'], datasetVersions: {}, sql: '-', sqlHash: '-',
    purpose: 'bench', policyHash: '-', status: 'released',
  });
}
const newCells = 200;
const sketches = new Map<string, Sketch>();
const cellKeys: string[] = [];
for (let i = 0; i < newCells; i++) {
  const key = JSON.stringify([i]);
  cellKeys.push(key);
  sketches.set(key, sketchOf(randomKeys(50 + (i % 200))));
}
let inserted = 0;
for (const target of [1_000, 10_000, 100_000]) {
  const rows = [];
  for (; inserted < target; inserted++) {
    // Prior cells with contributor counts in the same range as the new ones, so each new cell has candidates.
    const contributors = 50 + (inserted % 200);
    rows.push({ id: `cell_${inserted}`, jobId, lineage: 'residents', layout: SKETCH_LAYOUT, buckets, contributors, sketch: sealSketch(key, sketchOf(randomKeys(contributors)), 'residents') });
    if (rows.length === 2000) await db.insert(releasedCells).values(rows.splice(0));
  }
  if (rows.length > 0) await db.insert(releasedCells).values(rows);
  const started = performance.now();
  const flagged = await cellsToGuard(db, { dataset: 'residents', threshold, buckets, sketches, cellKeys, key });
  const perCell = (performance.now() - started) / newCells;
  console.log(`differencing guard with ${target.toLocaleString('en')} prior cells: ${perCell.toFixed(2)} ms per new cell (${flagged.size} flagged of ${newCells})`);
}

// DP against non-DP: the same aggregate, through the sandbox.
const [licence] = await db.select().from(licences).where(eq(licences.operatorId, 'harbour-credit'));
await setBudgetCap(db, { licenceId: licence!.id, datasetId: 'residents', epsilonCap: 100, reason: 'benchmark' }, 'bench', new Date());
const analyst = (await findPrincipal(db, 'analyst-harbour-credit'))!;
const pool = createSandboxPool({ size: 1 });
await pool.warm();
const sql = 'SELECT town, count(*) AS people FROM residents GROUP BY town';
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const times: Record<'plain' | 'dp', number[]> = { plain: [], dp: [] };
for (let round = 0; round < 8; round++) {
  for (const mode of ['plain', 'dp'] as const) {
    const started = performance.now();
    const prepared = await prepareJob(platform, analyst, { datasets: ['residents'], sql, purpose: 'bench', ...(mode === 'dp' ? { privacy: { differentialPrivacy: true, epsilon: 0.1 } } : {}) });
    const plan = await planJob(platform, prepared);
    if (plan.kind === 'model') throw new Error('the benchmark measures aggregate jobs');
    const version = prepared.datasetVersions.residents!;
    const outcome = await pool.run({
      jobId: `bench-${mode}-${round}`,
      snapshots: [{ datasetId: 'residents', path: platform.store.snapshotPath('residents', version) }],
      queries: plan.kind === 'dp_aggregate' ? [{ name: 'main', sql: plan.sql, rowLimit: 100_000 }] : sandboxQueries(plan),
      limits: { memoryMb: 2048, threads: 2, wallSeconds: 60 },
    });
    if (!outcome.ok) throw new Error(`${mode} job failed`);
    if (round > 0) times[mode].push(performance.now() - started);
  }
}
console.log(`DP job vs the same threshold-protected job (residents, count by town): ${median(times.dp).toFixed(0)} ms vs ${median(times.plain).toFixed(0)} ms, ratio ${(median(times.dp) / median(times.plain)).toFixed(2)}× (noise drawn after the run is not included; it takes well under a millisecond per cell)`);
await pool.close();
platform.parser.close();
await platform.bindCheck.close();
await platform.controlPlane.close();
fs.rmSync(dataDir, { recursive: true, force: true });
