import { CompactSign } from 'jose';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../src/audit/canonical-json.js';
import { leafHash, MerkleTree } from '../../src/audit/merkle.js';
import { verifyLog, type LogSnapshot } from '../../src/audit/verify-log.js';
import { ephemeralKeyRing } from '../../src/identity/keys.js';

/** Large logs are checked in worker threads; the same findings must come out of them. */
describe('verifying a log large enough to use worker threads', () => {
  async function log(size: number): Promise<LogSnapshot> {
    const keys = await ephemeralKeyRing();
    const at = '2026-01-01T00:00:00.000Z';
    const entries = Array.from({ length: size }, (_, index) => ({ index, leaf: canonicalJson({ type: 'job.queued', actor: 'system', job: `job_${index}`, at, index }) }));
    const tree = new MerkleTree();
    for (const entry of entries) tree.append(leafHash(entry.leaf));
    const body = { tree_size: size, root_hash: tree.root().toString('hex'), timestamp: at };
    const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(body))).setProtectedHeader({ alg: 'EdDSA', kid: keys.platform.kid, typ: 'pds-checkpoint+jws' }).sign(keys.platform.privateKey);
    return { checkpoint: { ...body, jws }, entries, jwks: keys.jwks(), earlier: [], releases: [] };
  }

  it('passes an untouched log of 30,000 leaves', async () => {
    expect((await verifyLog(await log(30_000))).ok).toBe(true);
  });

  it('finds one edited leaf deep in the second half', async () => {
    const snapshot = await log(30_000);
    snapshot.entries[27_123]!.leaf = snapshot.entries[27_123]!.leaf.replace('job_27123', 'job_99999');
    const report = await verifyLog(snapshot);
    expect(report.ok).toBe(false);
    expect(report.findings.find((finding) => !finding.ok)?.check).toBe('root hash');
  });

  it('finds a leaf that is not canonical', async () => {
    const snapshot = await log(30_000);
    snapshot.entries[20_001]!.leaf = snapshot.entries[20_001]!.leaf.replace('{', '{ ');
    const report = await verifyLog(snapshot);
    expect(report.findings).toContainEqual({ check: 'leaf content', ok: false, detail: 'leaf 20001 is not the canonical event recorded at that index' });
  });
});
