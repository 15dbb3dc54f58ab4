import { compactVerify, createLocalJWKSet, generateKeyPair, CompactSign, exportJWK } from 'jose';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash, MerkleTree } from '../../src/audit/merkle.js';
import { fetchLogSnapshot, verifyLog, type LogSnapshot } from '../../src/audit/verify-log.js';
import { principals } from '../../src/db/schema.js';
import { releaseJob } from '../../src/release/release-job.js';
import { findJob } from '../../src/jobs/submit-job.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let analyst: string;
let regulator: string;
let secondRegulator: string;
const householdsByTown = "SELECT town, count(*) AS households FROM residents GROUP BY town";

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1, environment: { PDS_DEMO_SCALE: '0.01' } });
  analyst = await t.tokenFor('analyst-harbour-credit');
  regulator = await t.tokenFor('regulator-data-dept');
  const admin = await t.tokenFor('admin-data-centre');
  await t.call('POST', '/v1/principals', { token: admin, json: { id: 'regulator-two', role: 'regulator', displayName: 'Second reviewer' } });
  secondRegulator = await t.tokenFor('regulator-two');
});
afterAll(() => t?.close());

async function submit(sql: string, datasets = ['residents']) {
  const response = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets, sql, purpose: 'audit test' } });
  expect(response.status).toBe(201);
  return t.waitForJob(response.json.id);
}

const approve = (jobId: string, token = regulator) => t.call('POST', `/v1/reviews/${jobId}`, { token, json: { decision: 'approve', reason: 'no disclosure risk seen' } });
const inProcessFetch = async (url: string, init: RequestInit) => t.app.request(url.replace('http://test', ''), init);
const snapshot = (witness: LogSnapshot['earlier'][number]['checkpoint'][] = []) => fetchLogSnapshot({ server: 'http://test', token: regulator, witness, fetch: inProcessFetch });

describe('review', () => {
  it('an L3 output waits for one reviewer, then is released with a receipt', async () => {
    const job = await submit(householdsByTown);
    expect(job.status).toBe('in_review');
    expect((await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst })).status).toBe(409);
    const queue = await t.call('GET', '/v1/reviews', { token: regulator });
    const entry = queue.json.reviews.find((review: { job: { id: string } }) => review.job.id === job.id);
    expect(entry).toMatchObject({ sql: householdsByTown, approvals: 0, canReview: true });
    expect(entry.output.rows.length).toBeGreaterThan(0);
    expect((await approve(job.id)).json.status).toBe('released');
    expect((await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst })).json.receipt).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('a reviewer of the job\'s own operator is refused (self-review)', async () => {
    // A misconfigured account that is both a regulator and a member of the operator.
    await t.platform.db.insert(principals).values({ id: 'conflicted-regulator', role: 'regulator', displayName: 'x', operatorId: 'harbour-credit' });
    const job = await submit(householdsByTown);
    const response = await approve(job.id, await t.tokenFor('conflicted-regulator'));
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('SELF_REVIEW');
  });

  it('a grade that needs two reviewers releases only after two different people approve; the same person twice is refused', async () => {
    t.platform.disclosurePolicy.grades.L3.reviewers = 2;
    try {
      const job = await submit("SELECT sex, count(*) AS people FROM residents GROUP BY sex");
      expect(job.reviewersRequired).toBe(2);
      expect((await approve(job.id)).json.status).toBe('in_review');
      const again = await approve(job.id);
      expect(again.status).toBe(409);
      expect(again.json.error.code).toBe('DUPLICATE_REVIEW');
      expect((await approve(job.id, secondRegulator)).json.status).toBe('released');
    } finally {
      t.platform.disclosurePolicy.grades.L3.reviewers = 1;
    }
  });

  it('a withheld output never becomes available', async () => {
    const job = await submit(householdsByTown);
    const response = await t.call('POST', `/v1/reviews/${job.id}`, { token: regulator, json: { decision: 'withhold', reason: 'too detailed' } });
    expect(response.json).toMatchObject({ status: 'withheld', code: 'REVIEW_WITHHELD' });
    expect((await approve(job.id, secondRegulator)).status).toBe(409);
    expect((await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst })).status).toBe(409);
  });

  it('operators cannot review', async () => {
    const job = await submit(householdsByTown);
    expect((await approve(job.id, analyst)).status).toBe(403);
  });
});

describe('receipts', () => {
  it('verify with a JOSE library and the published JWKS alone, and bind the output', async () => {
    const job = await submit(householdsByTown);
    await approve(job.id);
    const result = await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst });
    const jwks = (await t.call('GET', '/.well-known/jwks.json')).json;
    const { payload, protectedHeader } = await compactVerify(result.json.receipt, createLocalJWKSet(jwks));
    const receipt = JSON.parse(new TextDecoder().decode(payload));
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'pds-receipt+jws' });
    expect(receipt).toMatchObject({
      job: job.id,
      operator: 'harbour-credit',
      datasets: { residents: expect.stringMatching(/^[0-9a-f]{64}$/) },
      policy_hash: t.platform.disclosurePolicy.hash,
      output_hash: result.json.manifest.contentHash,
      audit_leaf_index: expect.any(Number),
    });
    const leaf = (await t.call('GET', `/v1/audit/entries?start=${receipt.audit_leaf_index}&end=${receipt.audit_leaf_index + 1}`, { token: regulator })).json.entries[0];
    expect(leaf.event).toMatchObject({ type: 'job.released', job: job.id, details: { outputHash: receipt.output_hash } });
  });

  it('the CSV download carries the same receipt', async () => {
    const job = await submit(householdsByTown);
    await approve(job.id);
    const json = await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst });
    const csv = await t.call('GET', `/v1/jobs/${job.id}/result?format=csv`, { token: analyst });
    expect(csv.headers.get('content-type')).toContain('text/csv');
    expect(csv.headers.get('x-pds-receipt')).toBe(json.json.receipt);
    expect(csv.text.split('\r\n')[0]).toBe('town,households,suppressed');
  });

  it('the CSV names the rule that withheld each row in a last column, so a withheld cell is not read as a NULL of the data', async () => {
    // Households have no industry code: their row is released with a NULL key; small industries are withheld.
    const job = await submit('SELECT industry_code, count(DISTINCT account_id) AS accounts FROM power_readings GROUP BY industry_code', ['power_readings']);
    await approve(job.id);
    const { json } = await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst });
    const csv = await t.call('GET', `/v1/jobs/${job.id}/result?format=csv`, { token: analyst });
    const [header, ...lines] = csv.text.trimEnd().split('\r\n');
    expect(header).toBe('industry_code,accounts,suppressed');
    const withheld = new Map(json.manifest.suppressedRows.map((entry: { row: number; code: string }) => [entry.row, entry.code]));
    expect(withheld.size).toBeGreaterThan(0);
    const households = json.rows.findIndex((row: unknown[], index: number) => row[0] === null && !withheld.has(index));
    expect(households).toBeGreaterThanOrEqual(0);
    expect(lines[households]).toMatch(/^,\d+,$/);
    for (const [row, code] of withheld) expect(lines[row as number]).toBe(`${json.rows[row as number][0] ?? ''},,${code}`);
  });
});

describe('fail closed and exactly once', () => {
  it('with the audit store unavailable nothing is released; once it is back the release goes through', async () => {
    const job = await submit(householdsByTown);
    const db = t.platform.db;
    await db.execute(sql`ALTER TABLE audit_leaves RENAME TO audit_leaves_offline`);
    let response;
    try {
      response = await approve(job.id);
    } finally {
      await db.execute(sql`ALTER TABLE audit_leaves_offline RENAME TO audit_leaves`);
    }
    expect(response.status).toBe(500);
    const after = await t.waitForJob(job.id);
    expect(after).toMatchObject({ status: 'in_review', receipt: null, releaseLeafIndex: null });
    expect((await t.call('GET', `/v1/jobs/${job.id}/result`, { token: analyst })).status).toBe(409);
    expect((await approve(job.id)).json.status).toBe('released');
  });

  it('a retried release returns the same receipt and adds no leaf', async () => {
    const job = await submit(householdsByTown);
    const released = (await approve(job.id)).json;
    const sizeBefore = (await t.platform.audit.sync()).size;
    const again = await releaseJob(t.platform, job.id, 'retry');
    const stored = await t.waitForJob(job.id);
    expect(again.receipt).toBe(stored.receipt);
    expect(again.releaseLeafIndex).toBe(released.releaseLeafIndex);
    expect((await t.platform.audit.sync()).size).toBe(sizeBefore);
  });

  it('a worker killed mid-job fails the job as a system failure with no output, and the next job runs', async () => {
    const started = await t.call('POST', '/v1/jobs', {
      token: analyst,
      json: { datasets: ['residents'], sql: 'SELECT a.town, count(*) AS n FROM residents a, residents b, residents c, residents d GROUP BY a.town', purpose: 'x' },
    });
    // Wait until a sandbox process has acknowledged the job, then kill every sandbox process.
    expect(started.status).toBe(201);
    for (let i = 0; i < 400 && !t.runtime.pool!.isRunning(started.json.id); i++) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    expect(t.runtime.pool!.isRunning(started.json.id)).toBe(true);
    expect((await findJob(t.platform, started.json.id))?.status).toBe('running');
    for (const pid of t.runtime.pool!.pids()) if (pid) process.kill(pid, 'SIGKILL');
    const failed = await t.waitForJob(started.json.id);
    expect(failed).toMatchObject({ status: 'failed', statusCode: 'SYSTEM_FAILURE', output: null, receipt: null });
    expect((await submit(householdsByTown)).status).toBe('in_review');
  });
});

describe('the audit log', () => {
  it('records each transition of a job as a leaf', async () => {
    const job = await submit(householdsByTown);
    await approve(job.id);
    const record = await t.call('GET', `/v1/jobs/${job.id}/record`, { token: regulator });
    expect(record.json.audit.map((entry: { leaf: string }) => JSON.parse(entry.leaf).type)).toEqual(['job.queued', 'job.running', 'job.in_review', 'review.recorded', 'job.released']);
    expect((await t.call('GET', `/v1/jobs/${job.id}/record`, { token: analyst })).status).toBe(404);
  });

  it('records refusals and authorization denials', async () => {
    await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['residents'], sql: 'SELECT * FROM residents', purpose: 'x' } });
    await t.call('GET', '/v1/audit/entries', { token: analyst });
    const rejected = await t.call('GET', '/v1/audit/entries?type=job.rejected&start=0&end=10000', { token: regulator });
    expect(rejected.json.entries.at(-1).event.details.code).toBe('STAR_ON_PROTECTED_DATA');
    const denied = await t.call('GET', '/v1/audit/entries?type=authz.denied&start=0&end=10000', { token: regulator });
    expect(denied.json.entries.at(-1).event).toMatchObject({ actor: 'analyst-harbour-credit', details: { action: 'audit:read-entries' } });
  });

  it('entries can be searched by operator and dataset', async () => {
    const byOperator = await t.call('GET', '/v1/audit/entries?operator=harbour-credit&start=0&end=10000', { token: regulator });
    expect(byOperator.json.entries.length).toBeGreaterThan(0);
    expect(byOperator.json.entries.every((entry: { event: { operator: string } }) => entry.event.operator === 'harbour-credit')).toBe(true);
    const byDataset = await t.call('GET', '/v1/audit/entries?dataset=residents&start=0&end=10000', { token: regulator });
    expect(byDataset.json.entries.every((entry: { event: { datasets: string[] } }) => entry.event.datasets.includes('residents'))).toBe(true);
  });

  it('a search newest first pages through every match of the whole log with next', async () => {
    const all = (await t.call('GET', '/v1/audit/entries?type=job.queued&start=0&end=10000', { token: regulator })).json.entries.map((entry: { index: number }) => entry.index);
    expect(all.length).toBeGreaterThan(3);
    const seen: number[] = [];
    let end: number | undefined;
    for (let page = 0; page < 100; page++) {
      const answer = (await t.call('GET', `/v1/audit/entries?type=job.queued&order=desc&limit=2${end === undefined ? '' : `&end=${end}`}`, { token: regulator })).json;
      seen.push(...answer.entries.map((entry: { index: number }) => entry.index));
      if (!answer.next) break;
      end = answer.next.end;
    }
    expect(seen).toEqual([...all].reverse());
  });

  it('a search oldest first continues from next.start', async () => {
    const first = (await t.call('GET', '/v1/audit/entries?type=job.queued&limit=1', { token: regulator })).json;
    const second = (await t.call('GET', `/v1/audit/entries?type=job.queued&limit=1&start=${first.next.start}`, { token: regulator })).json;
    const all = (await t.call('GET', '/v1/audit/entries?type=job.queued&start=0&end=10000', { token: regulator })).json.entries;
    expect([first.entries[0].index, second.entries[0].index]).toEqual([all[0].index, all[1].index]);
  });

  it('a family of event types is searched with .*', async () => {
    const family = (await t.call('GET', '/v1/audit/entries?type=job.*&order=desc&limit=1000', { token: regulator })).json.entries;
    const types = new Set(family.map((entry: { event: { type: string } }) => entry.event.type));
    expect([...types].every((type) => (type as string).startsWith('job.'))).toBe(true);
    expect(types.has('job.queued') && types.has('job.released')).toBe(true);
  });

  it('a family that is not a lower-case name is refused, not read as a pattern', async () => {
    const answer = await t.call('GET', `/v1/audit/entries?type=${encodeURIComponent('%.*')}&limit=10`, { token: regulator });
    expect(answer.status).toBe(400);
    expect(answer.json.error.code).toBe('VALIDATION_FAILED');
  });

  it('a page by index still holds at most 10,000 leaves', async () => {
    expect((await t.call('GET', '/v1/audit/entries?start=0&end=10001', { token: regulator })).status).toBe(400);
  });

  it('the database refuses to rewrite a leaf', async () => {
    await expect(t.platform.db.execute(sql`UPDATE audit_leaves SET leaf = 'x' WHERE leaf_index = 0`)).rejects.toThrow();
  });

  it('inclusion and consistency proofs from the API verify against signed checkpoints', async () => {
    const first = (await t.call('GET', '/v1/audit/checkpoint', { token: analyst })).json;
    await submit(householdsByTown);
    const second = (await t.call('GET', '/v1/audit/checkpoint', { token: analyst })).json;
    expect(second.tree_size).toBeGreaterThan(first.tree_size);
    const { verifyConsistency, verifyInclusion } = await import('../../src/audit/merkle.js');
    const consistency = (await t.call('GET', `/v1/audit/proofs/consistency?first=${first.tree_size}&second=${second.tree_size}`, { token: analyst })).json;
    verifyConsistency(first.tree_size, second.tree_size, Buffer.from(first.root_hash, 'hex'), Buffer.from(second.root_hash, 'hex'), consistency.consistency_path.map((h: string) => Buffer.from(h, 'hex')));
    const inclusion = (await t.call('GET', `/v1/audit/proofs/inclusion?index=3&size=${second.tree_size}`, { token: analyst })).json;
    verifyInclusion(3, second.tree_size, Buffer.from(inclusion.leaf_hash, 'hex'), inclusion.inclusion_path.map((h: string) => Buffer.from(h, 'hex')), Buffer.from(second.root_hash, 'hex'));
  });
});

describe('the verifier', () => {
  let good: LogSnapshot;
  let older: LogSnapshot['checkpoint'];
  beforeAll(async () => {
    older = (await t.call('GET', '/v1/audit/checkpoint', { token: regulator })).json;
    const job = await submit(householdsByTown);
    await approve(job.id);
    good = await snapshot([older]);
  });
  const copy = () => structuredClone(good);

  it('passes an untouched log, with consistency to the checkpoint it saw before', async () => {
    const report = await verifyLog(good);
    expect(report.findings.filter((finding) => !finding.ok)).toEqual([]);
    expect(report.findings.map((finding) => finding.check)).toContain(`consistency with the checkpoint of size ${older.tree_size}`);
  });

  const tampering: Array<{ name: string; tamper: (log: LogSnapshot) => Promise<void> | void }> = [
    { name: 'an edited leaf', tamper: (log) => void (log.entries[3]!.leaf = log.entries[3]!.leaf.replace('"actor":"', '"actor":"x')) },
    { name: 'a deleted leaf', tamper: (log) => void log.entries.splice(2, 1) },
    {
      name: 'two swapped leaves',
      tamper: (log) => {
        const [a, b] = [log.entries[1]!.leaf, log.entries[2]!.leaf];
        log.entries[1]!.leaf = b;
        log.entries[2]!.leaf = a;
      },
    },
    {
      name: 'a truncated tail when a newer checkpoint is known',
      tamper: (log) => {
        const truncated = older.tree_size - 2;
        log.earlier = [{ checkpoint: log.checkpoint, consistencyPath: [] }];
        log.entries = log.entries.slice(0, truncated);
        const tree = new MerkleTree();
        for (const entry of log.entries) tree.append(leafHash(entry.leaf));
        log.checkpoint = { ...log.checkpoint, tree_size: truncated, root_hash: tree.root().toString('hex') };
      },
    },
    {
      name: 'a log rewritten and re-hashed without the signing key',
      tamper: async (log) => {
        log.entries[4]!.leaf = log.entries[4]!.leaf.replace('"actor":"', '"actor":"y');
        const tree = new MerkleTree();
        for (const entry of log.entries) tree.append(leafHash(entry.leaf));
        const body = { tree_size: tree.size, root_hash: tree.root().toString('hex'), timestamp: log.checkpoint.timestamp };
        const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        const jws = await new CompactSign(new TextEncoder().encode(JSON.stringify(body)))
          .setProtectedHeader({ alg: 'EdDSA', kid: t.platform.keys.platform.kid, typ: 'pds-checkpoint+jws' })
          .sign(privateKey);
        log.checkpoint = { ...body, jws };
      },
    },
    { name: 'a checkpoint whose fields differ from what was signed', tamper: (log) => void (log.checkpoint.root_hash = '00'.repeat(32)) },
    { name: 'a flipped bit in the consistency proof', tamper: (log) => void (log.earlier[0]!.consistencyPath[0] = flip(log.earlier[0]!.consistencyPath[0]!)) },
    { name: 'an empty consistency proof', tamper: (log) => void (log.earlier[0]!.consistencyPath = []) },
    { name: 'a receipt presented for another job', tamper: (log) => void (log.releases[0]!.job = log.releases[1]!.job) },
    { name: 'a release leaf with no released job', tamper: (log) => void log.releases.splice(0, 1) },
    {
      name: 'a receipt signed by another key',
      tamper: async (log) => {
        const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
        const payload = new TextDecoder().decode((await compactVerify(log.releases[0]!.receipt, createLocalJWKSet(log.jwks))).payload);
        log.releases[0]!.receipt = await new CompactSign(new TextEncoder().encode(payload)).setProtectedHeader({ alg: 'EdDSA', kid: t.platform.keys.platform.kid, typ: 'pds-receipt+jws' }).sign(privateKey);
      },
    },
    {
      name: 'keys swapped in the JWKS for an attacker\'s',
      tamper: async (log) => {
        const { publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
        log.jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: t.platform.keys.platform.kid, alg: 'EdDSA' }] };
      },
    },
  ];

  it.each(tampering)('detects $name', async ({ tamper }) => {
    const log = copy();
    await tamper(log);
    const report = await verifyLog(log);
    expect(report.ok).toBe(false);
  });
});

function flip(hex: string): string {
  const bytes = Buffer.from(hex, 'hex');
  bytes[0]! ^= 0x08;
  return bytes.toString('hex');
}
