/**
 * Audit log figures: append throughput (batched and one leaf per transaction), the verifier's time over
 * 1,000,000 leaves, and inclusion-proof time. Uses PostgreSQL when DATABASE_URL is set (a scratch database is
 * created and dropped), else an embedded PGlite.
 *
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npx tsx bench/audit.ts
 */
import crypto from 'node:crypto';
import { CompactSign } from 'jose';
import { appendAuditEvents, type AuditEvent } from '../src/audit/audit-log.js';
import { leafHash, MerkleTree, verifyInclusion } from '../src/audit/merkle.js';
import { verifyLog } from '../src/audit/verify-log.js';
import { createScratchDatabase } from '../src/db/scratch-database.js';
import { canonicalJson } from '../src/audit/canonical-json.js';
import { migrateControlPlane, openControlPlane, type ControlPlane } from '../src/db/connect.js';
import { ephemeralKeyRing } from '../src/identity/keys.js';

const url = process.env.DATABASE_URL;
const appendCount = Number(process.env.BENCH_APPEND ?? 100_000);
const verifyCount = Number(process.env.BENCH_VERIFY ?? 1_000_000);

async function scratchControlPlane(): Promise<{ controlPlane: ControlPlane; dispose: () => Promise<void> }> {
  if (!url) {
    const controlPlane = await openControlPlane({ kind: 'pglite' });
    await migrateControlPlane(controlPlane);
    return { controlPlane, dispose: () => controlPlane.close() };
  }
  const scratch = await createScratchDatabase(url, 'pds_bench');
  const controlPlane = await openControlPlane({ kind: 'postgres', url: scratch.url });
  await migrateControlPlane(controlPlane);
  return {
    controlPlane,
    dispose: async () => {
      await controlPlane.close();
      await scratch.drop();
    },
  };
}

const event = (i: number): AuditEvent => ({
  type: 'job.released',
  actor: 'system',
  operator: 'lingang-analytics',
  job: `job_${i}`,
  datasets: ['power_readings'],
  details: { outputHash: crypto.createHash('sha256').update(String(i)).digest('hex'), policyHash: 'p'.repeat(64) },
});

const { controlPlane, dispose } = await scratchControlPlane();
const db = controlPlane.db;
console.log(`control plane: ${controlPlane.kind}`);

for (const batch of [5000, 1]) {
  const count = batch === 1 ? Math.min(2000, appendCount) : appendCount;
  const started = performance.now();
  for (let i = 0; i < count; i += batch) {
    const events = Array.from({ length: Math.min(batch, count - i) }, (_, offset) => event(i + offset));
    await db.transaction((tx) => appendAuditEvents(tx as never, events, new Date()));
  }
  const seconds = (performance.now() - started) / 1000;
  console.log(`append, ${batch === 1 ? 'one leaf per transaction' : `batches of ${batch}`}: ${Math.round(count / seconds).toLocaleString('en')} leaves/s (${count.toLocaleString('en')} leaves${batch > 1 ? ', target ≥ 10,000/s on PostgreSQL' : ''})`);
}
await dispose();

// The verifier over 1,000,000 leaves: canonical-JSON check and hash of every leaf, the root, the signature.
const keys = await ephemeralKeyRing();
const at = new Date().toISOString();
const entries = Array.from({ length: verifyCount }, (_, index) => ({ index, leaf: canonicalJson({ ...event(index), type: 'job.queued', at, index }) }));
const tree = new MerkleTree();
for (const entry of entries) tree.append(leafHash(entry.leaf));
const body = { tree_size: tree.size, root_hash: tree.root().toString('hex'), timestamp: at };
const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(body))).setProtectedHeader({ alg: 'EdDSA', kid: keys.platform.kid, typ: 'pds-checkpoint+jws' }).sign(keys.platform.privateKey);
let started = performance.now();
const report = await verifyLog({ checkpoint: { ...body, jws }, entries, jwks: keys.jwks(), earlier: [], releases: [] });
console.log(`verify ${verifyCount.toLocaleString('en')} leaves: ${((performance.now() - started) / 1000).toFixed(2)} s (${report.ok ? 'verified' : 'FAILED'}; target ≤ 10 s)`);

// Inclusion proofs in the 1,000,000-leaf tree: make and check, at random indexes.
const rounds = 2000;
const indexes = Array.from({ length: rounds }, () => crypto.randomInt(tree.size));
const root = tree.root();
started = performance.now();
for (const index of indexes) tree.inclusionProof(index, tree.size);
const make = (performance.now() - started) / rounds;
started = performance.now();
for (const index of indexes) verifyInclusion(index, tree.size, tree.leafHashAt(index), tree.inclusionProof(index, tree.size), root);
const both = (performance.now() - started) / rounds;
console.log(`inclusion proof in a ${tree.size.toLocaleString('en')}-leaf tree: ${(make * 1000).toFixed(0)} µs to make, ${(both * 1000).toFixed(0)} µs to make and verify (target < 1 ms)`);
