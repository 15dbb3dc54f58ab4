import { eq } from 'drizzle-orm';
import { incidents, jobs, reviews } from '../../src/db/schema.js';
import { licenceCovering } from '../../src/jobs/licence-coverage.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runJob } from '../../src/jobs/run-job.js';
import { createSandboxPool } from '../../src/sandbox/sandbox-pool.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let regulator: string;
let analyst: string;
let otherAnalyst: string;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
  regulator = await t.tokenFor('regulator-data-dept');
  analyst = await t.tokenFor('analyst-lingang-analytics');
  otherAnalyst = await t.tokenFor('analyst-harbour-credit');
});
afterAll(() => t?.close());

const licenceOf = async (token: string) => (await t.call('GET', '/v1/licences', { token })).json.licences[0];

const validLicence = () => ({
  title: 'Test licence',
  scope: [{ dataset: 'enterprises' }, { dataset: 'power_readings', columns: ['town', 'month', 'kwh'] }],
  purposes: ['public_interest'],
  maxGrade: 'L3',
  validFrom: new Date(t.clock.now.getTime() - 86_400_000).toISOString(),
  validUntil: new Date(t.clock.now.getTime() + 365 * 86_400_000).toISOString(),
  feeMode: 'free',
});

describe('operators and licences', () => {
  it('a regulator creates an operator, grants it a licence, and a new analyst of it is let in', async () => {
    const operator = await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'seaside-research', name: 'Seaside Research' } });
    expect(operator.status).toBe(201);
    const licence = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    expect(licence.status).toBe(201);
    expect(licence.json).toMatchObject({ operatorId: 'seaside-research', status: 'active', maxGrade: 'L3' });
    const admin = await t.tokenFor('admin-data-centre');
    const user = await t.call('POST', '/v1/principals', { token: admin, json: { id: 'seaside-analyst', role: 'operator', displayName: 'A', operatorId: 'seaside-research' } });
    expect(user.status).toBe(201);
    const catalogue = await t.call('GET', '/v1/datasets', { token: await t.tokenFor('seaside-analyst') });
    expect(catalogue.status).toBe(200);
  });

  it('an operator whose credit code has a mistyped character is refused, naming the field; the code as issued is taken', async () => {
    const mistyped = await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'coded-operator', name: 'Coded', creditCode: '91310115MA7LG0A180' } });
    expect(mistyped.status).toBe(400);
    expect(mistyped.json.error.details).toContainEqual(expect.objectContaining({ path: 'creditCode' }));
    const issued = await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'coded-operator', name: 'Coded', creditCode: '91310115MA7LG0A189' } });
    expect(issued.json).toMatchObject({ id: 'coded-operator', creditCode: '91310115MA7LG0A189' });
  });

  it('a licence above its maximum grade is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), scope: [{ dataset: 'transit_trips' }] },
    });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'scope.0.dataset', problem: "grade L4 is above the licence's maximum grade" });
  });

  it('a licence naming an unknown column is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), scope: [{ dataset: 'enterprises', columns: ['no_such_column'] }] },
    });
    expect(response.status).toBe(400);
  });

  it('a licence that ends before it starts is refused', async () => {
    const response = await t.call('POST', '/v1/operators/seaside-research/licences', {
      token: regulator,
      json: { ...validLicence(), validUntil: new Date(t.clock.now.getTime() - 2 * 86_400_000).toISOString() },
    });
    expect(response.status).toBe(400);
    expect(response.json.error.details).toContainEqual({ path: 'validUntil', problem: 'must be after validFrom' });
  });

  it('an operator cannot create operators', async () => {
    const response = await t.call('POST', '/v1/operators', { token: analyst, json: { id: 'rogue-operator', name: 'Rogue' } });
    expect(response.status).toBe(403);
  });

  it("an operator sees only its own licences, and another operator's licence answers 404", async () => {
    const own = await t.call('GET', '/v1/licences', { token: analyst });
    expect(own.json.licences.every((licence: { operatorId: string }) => licence.operatorId === 'lingang-analytics')).toBe(true);
    const othersLicence = await licenceOf(otherAnalyst);
    const response = await t.call('GET', `/v1/licences/${othersLicence.id}`, { token: analyst });
    expect(response.status).toBe(404);
    expect(response.json.error.code).toBe('NOT_FOUND');
  });

  it("another operator's record answers 404, not 403", async () => {
    const response = await t.call('GET', '/v1/operators/harbour-credit', { token: analyst });
    expect(response.status).toBe(404);
  });
});

describe('suspension and revocation', () => {
  it('a suspended licence stops its operator at once, with the token it already holds', async () => {
    const licence = await licenceOf(otherAnalyst);
    expect((await t.call('GET', '/v1/datasets', { token: otherAnalyst })).status).toBe(200);
    const suspended = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'audit finding' } });
    expect(suspended.json.status).toBe('suspended');
    const refused = await t.call('GET', '/v1/datasets', { token: otherAnalyst });
    expect(refused.status).toBe(403);
    expect(refused.json.error.code).toBe('LICENCE_INACTIVE');
    // The other operator is not affected.
    expect((await t.call('GET', '/v1/datasets', { token: analyst })).status).toBe(200);
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'finding resolved' } });
    expect((await t.call('GET', '/v1/datasets', { token: otherAnalyst })).status).toBe(200);
  });

  it("an operator whose only licence is suspended still reads it, with the regulator's reason", async () => {
    const licence = await licenceOf(analyst);
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'quarterly report missing' } });
    try {
      const own = await t.call('GET', '/v1/licences', { token: analyst });
      expect(own.json.licences.find((entry: { id: string }) => entry.id === licence.id)).toMatchObject({ status: 'suspended', statusReason: 'quarterly report missing' });
      expect((await t.call('GET', `/v1/licences/${licence.id}`, { token: analyst })).status).toBe(200);
      expect((await t.call('POST', `/v1/licences/${licence.id}/status`, { token: analyst, json: { status: 'active', reason: 'filed' } })).json.error.code).toBe('LICENCE_INACTIVE');
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'report filed' } });
    }
  });

  it('an expired licence counts as not in force', async () => {
    const saved = t.clock.now;
    t.clock.now = new Date(Date.UTC(saved.getUTCFullYear() + 10, 0, 1));
    try {
      const token = await t.tokenFor('analyst-lingang-analytics');
      const response = await t.call('GET', '/v1/datasets', { token });
      expect(response.json.error.code).toBe('LICENCE_INACTIVE');
    } finally {
      t.clock.now = saved;
    }
  });

  it('revocation is final', async () => {
    const created = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    const id = created.json.id;
    expect((await t.call('POST', `/v1/licences/${id}/status`, { token: regulator, json: { status: 'revoked', reason: 'misuse' } })).status).toBe(200);
    const reinstated = await t.call('POST', `/v1/licences/${id}/status`, { token: regulator, json: { status: 'active', reason: 'appeal' } });
    expect(reinstated.status).toBe(409);
    expect(reinstated.json.error.code).toBe('INVALID_TRANSITION');
  });

  it('an operator cannot lift its own suspension', async () => {
    const licence = await licenceOf(analyst);
    const response = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: analyst, json: { status: 'active', reason: 'please' } });
    expect(response.status).toBe(403);
    expect(response.json.error.code).toBe('FORBIDDEN');
  });

  it("another operator's licence cannot be changed and is not revealed", async () => {
    const licence = await licenceOf(otherAnalyst);
    const response = await t.call('POST', `/v1/licences/${licence.id}/status`, { token: analyst, json: { status: 'revoked', reason: 'x' } });
    expect(response.status).toBe(404);
  });
});

const auditEvents = async (type: string) =>
  (await t.call('GET', `/v1/audit/entries?type=${type}&start=0&end=10000`, { token: regulator })).json.entries.map((entry: { event: Record<string, unknown> }) => entry.event);

describe('licensing in the audit log', () => {
  it('creating an operator is recorded with who did it', async () => {
    await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'audited-operator', name: 'Audited Operator' } });
    expect(await auditEvents('operator.created')).toContainEqual(
      expect.objectContaining({ actor: 'regulator-data-dept', operator: 'audited-operator', details: { name: 'Audited Operator', creditCode: null } }),
    );
  });

  it('a grant is recorded with its scope, grade, purposes and validity', async () => {
    const granted = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    const event = (await auditEvents('licence.granted')).find((candidate: { details: { licence: string } }) => candidate.details.licence === granted.json.id);
    expect(event).toMatchObject({
      actor: 'regulator-data-dept',
      operator: 'seaside-research',
      datasets: ['enterprises', 'power_readings'],
      details: { scope: validLicence().scope, maxGrade: 'L3', purposes: ['public_interest'], feeMode: 'free', validFrom: granted.json.validFrom, validUntil: granted.json.validUntil },
    });
  });

  it('a suspension and a reinstatement are recorded with their reasons', async () => {
    const { json: licence } = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'late report' } });
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'report filed' } });
    const ofThis = (events: Array<{ details: { licence: string } }>) => events.filter((event) => event.details.licence === licence.id);
    expect(ofThis(await auditEvents('licence.suspended'))).toEqual([
      expect.objectContaining({ actor: 'regulator-data-dept', operator: 'seaside-research', details: { licence: licence.id, from: 'active', to: 'suspended', reason: 'late report' } }),
    ]);
    expect(ofThis(await auditEvents('licence.reinstated'))).toEqual([expect.objectContaining({ details: { licence: licence.id, from: 'suspended', to: 'active', reason: 'report filed' } })]);
  });

  it('six identical suspensions sent at once suspend once and are recorded once', async () => {
    const { json: licence } = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence() });
    const answers = await Promise.all(
      Array.from({ length: 6 }, () => t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'burst' } })),
    );
    expect(answers.map((answer) => answer.json.status)).toEqual(Array(6).fill('suspended'));
    expect((await auditEvents('licence.suspended')).filter((event: { details: { licence: string } }) => event.details.licence === licence.id)).toHaveLength(1);
  });

  it('a grant retried with its Idempotency-Key answers the first licence and grants nothing more', async () => {
    const before = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.length;
    const headers = { 'idempotency-key': 'grant-seaside-2026-1' };
    const first = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence(), headers });
    const retry = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence(), headers });
    expect(first.status).toBe(201);
    expect(first.headers.get('idempotent-replayed')).toBeNull();
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.json).toEqual(first.json);
    expect((await t.call('GET', '/v1/licences', { token: regulator })).json.licences.length).toBe(before + 1);
    expect((await auditEvents('licence.granted')).filter((event: { details: { licence: string } }) => event.details.licence === first.json.id)).toHaveLength(1);
  });

  it('six identical keyed grants sent at once grant one licence', async () => {
    const before = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.length;
    const headers = { 'idempotency-key': 'grant-seaside-burst' };
    const answers = await Promise.all(Array.from({ length: 6 }, () => t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence(), headers })));
    expect(answers.map((answer) => answer.status)).toEqual(Array(6).fill(201));
    expect(new Set(answers.map((answer) => answer.json.id)).size).toBe(1);
    expect((await t.call('GET', '/v1/licences', { token: regulator })).json.licences.length).toBe(before + 1);
  });

  it('an Idempotency-Key sent again with another grant is refused', async () => {
    const headers = { 'idempotency-key': 'grant-seaside-2026-2' };
    await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: validLicence(), headers });
    const other = await t.call('POST', '/v1/operators/seaside-research/licences', { token: regulator, json: { ...validLicence(), title: 'Another licence' }, headers });
    expect(other.status).toBe(422);
    expect(other.json.error.code).toBe('IDEMPOTENCY_KEY_REUSED');
  });
});

describe('identity in the audit log', () => {
  it("the demo's operators, licences and accounts are recorded from the first run", async () => {
    expect((await auditEvents('operator.created')).filter((event: { actor: string }) => event.actor === 'demo-seed').map((event: { operator: string }) => event.operator).sort()).toEqual([
      'harbour-credit',
      'lingang-analytics',
    ]);
    expect((await auditEvents('licence.granted')).filter((event: { actor: string }) => event.actor === 'demo-seed')).toHaveLength(2);
    const accounts = (await auditEvents('principal.created')).filter((event: { actor: string }) => event.actor === 'demo-seed');
    expect(accounts.map((event: { details: { principal: string } }) => event.details.principal)).toContain('regulator-data-dept');
  });

  it('creating a principal is recorded with who did it', async () => {
    const admin = await t.tokenFor('admin-data-centre');
    await t.call('POST', '/v1/principals', { token: admin, json: { id: 'audited-analyst', role: 'operator', displayName: 'A', operatorId: 'seaside-research' } });
    expect(await auditEvents('principal.created')).toContainEqual(
      expect.objectContaining({ actor: 'admin-data-centre', operator: 'seaside-research', details: { principal: 'audited-analyst', role: 'operator', institution: null } }),
    );
  });

  it('minting a token is recorded by its id and expiry, never the token itself', async () => {
    const admin = await t.tokenFor('admin-data-centre');
    const minted = await t.call('POST', '/v1/tokens', { token: admin, json: { principalId: 'analyst-lingang-analytics', ttlSeconds: 3600 } });
    const claims = JSON.parse(Buffer.from(minted.json.token.split('.')[1], 'base64url').toString());
    const entries = (await t.call('GET', '/v1/audit/entries?type=token.minted&start=0&end=10000', { token: regulator })).json.entries;
    const entry = entries.find((candidate: { event: { details: { tokenId: string } } }) => candidate.event.details.tokenId === claims.jti);
    expect(entry.event).toMatchObject({
      actor: 'admin-data-centre',
      operator: 'lingang-analytics',
      details: { subject: 'analyst-lingang-analytics', role: 'operator', expiresAt: new Date(claims.exp * 1000).toISOString() },
    });
    expect(entry.leaf).not.toContain(minted.json.token.split('.')[2]);
  });
});

describe('jobs under a licence', () => {
  it('a job queued before its licence was suspended does not run, and says why', async () => {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['bus_routes'], purpose: 'licence test', sql: 'SELECT town, count(*) AS stops FROM bus_routes GROUP BY town' } });
    expect(submitted.status).toBe(201);
    const licence = await licenceOf(analyst);
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'inspection' } });
    try {
      const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
      const ran = await t.rerunWithPlan(submitted.json.id, queued!.plan);
      expect(ran).toMatchObject({ status: 'failed', statusCode: 'LICENCE_INACTIVE', output: null });
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'inspection closed' } });
    }
    const failed = (await auditEvents('job.failed')).find((event: { job: string }) => event.job === submitted.json.id);
    expect(failed.details.code).toBe('LICENCE_INACTIVE');
  });

  it('an operator found holding no licence in force while a job is prepared is refused as unlicensed, with no over-scope incident', async () => {
    // What a suspension landing between a request's authorization and its licence check leaves the check to find.
    await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'between-checks', name: 'Between Checks' } });
    const { datasets: catalogue } = await t.platform.analysisCatalogue();
    const refusal = await licenceCovering(t.platform.db, { operatorId: 'between-checks', principalId: 'analyst-lingang-analytics', datasets: ['bus_routes'], columnsUsed: [], catalogue }, t.clock.now).catch((error: unknown) => error);
    expect(refusal).toMatchObject({ code: 'LICENCE_INACTIVE' });
    expect((await t.platform.db.select().from(incidents).where(eq(incidents.operatorId, 'between-checks'))).length).toBe(0);
  });

  it('an output held for review is not released while its licence is suspended, and the refused approval is not recorded', async () => {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], purpose: 'licence test', sql: 'SELECT town, count(*) AS readings FROM power_readings GROUP BY town' } });
    const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    expect((await t.rerunWithPlan(submitted.json.id, queued!.plan))?.status).toBe('in_review');
    const licence = await licenceOf(analyst);
    const approve = () => t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: 'no disclosure risk seen' } });
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'inspection' } });
    try {
      const refused = await approve();
      expect(refused.status).toBe(409);
      expect(refused.json.error.code).toBe('LICENCE_NOT_IN_FORCE');
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'inspection closed' } });
    }
    const [held] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    expect(held).toMatchObject({ status: 'in_review', receipt: null });
    expect((await auditEvents('review.recorded')).filter((event: { job: string }) => event.job === submitted.json.id)).toEqual([]);
    // Once the licence is in force again, the same reviewer's approval releases it.
    expect((await approve()).json.status).toBe('released');
  });

  it('approvals and suspensions sent at once each commit or are refused, never deadlock', async () => {
    // On PostgreSQL an approval once took the audit log's lock before the licence's, a suspension the other way round.
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], purpose: 'licence test', sql: 'SELECT town, count(*) AS readings FROM power_readings GROUP BY town' } });
    const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    expect((await t.rerunWithPlan(submitted.json.id, queued!.plan))?.status).toBe('in_review');
    const licence = await licenceOf(analyst);
    const statuses: number[] = [];
    try {
      for (let round = 0; round < 30; round++) {
        // The same held output each round, as it was before the last round's approval.
        await t.platform.db.delete(reviews).where(eq(reviews.jobId, submitted.json.id));
        await t.platform.db.update(jobs).set({ status: 'in_review', receipt: null }).where(eq(jobs.id, submitted.json.id));
        const [first, second] = round % 2 === 0 ? ['suspended', 'active'] : ['active', 'suspended'];
        const answers = await Promise.all([
          t.call('POST', `/v1/reviews/${submitted.json.id}`, { token: regulator, json: { decision: 'approve', reason: 'no disclosure risk seen' } }),
          t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: first, reason: 'inspection' } }),
          t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: second, reason: 'inspection' } }),
        ]);
        statuses.push(...answers.map((answer) => answer.status));
      }
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'inspection closed' } });
    }
    expect(statuses.filter((status) => status !== 200 && status !== 409)).toEqual([]);
  });

  it("the review queue tells reviewers when a held output's licence is not in force, and stops saying so once it is", async () => {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['power_readings'], purpose: 'licence test', sql: 'SELECT month, count(*) AS readings FROM power_readings GROUP BY month' } });
    const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    await t.rerunWithPlan(submitted.json.id, queued!.plan);
    const entry = async () => (await t.call('GET', '/v1/reviews', { token: regulator })).json.reviews.find((review: { job: { id: string } }) => review.job.id === submitted.json.id);
    expect((await entry()).releaseBlocked).toBeNull();
    const licence = await licenceOf(analyst);
    await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'inspection' } });
    try {
      expect((await entry()).releaseBlocked).toMatchObject({ code: 'LICENCE_NOT_IN_FORCE' });
    } finally {
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'inspection closed' } });
    }
    expect((await entry()).releaseBlocked).toBeNull();
  });

  it('an output whose licence was suspended while the job ran is discarded, not released', async () => {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['bus_routes'], purpose: 'licence test', sql: 'SELECT town, count(*) AS stops FROM bus_routes GROUP BY town' } });
    const licence = await licenceOf(analyst);
    const pool = createSandboxPool({ size: 1 });
    // The regulator's suspension lands after the sandbox has answered and before the output is released.
    const suspendingPool = {
      ...pool,
      run: async (...args: Parameters<typeof pool.run>) => {
        const outcome = await pool.run(...args);
        await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'suspended', reason: 'inspection' } });
        return outcome;
      },
    };
    try {
      const { db, store, disclosurePolicy, keys, clock } = t.platform;
      await runJob({ db, store, pool: suspendingPool, disclosurePolicy, keys, clock }, submitted.json.id);
    } finally {
      await pool.close();
      await t.call('POST', `/v1/licences/${licence.id}/status`, { token: regulator, json: { status: 'active', reason: 'inspection closed' } });
    }
    const [discarded] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
    expect(discarded).toMatchObject({ status: 'failed', statusCode: 'LICENCE_INACTIVE', output: null, receipt: null });
    expect((await auditEvents('job.released')).filter((event: { job: string }) => event.job === submitted.json.id)).toEqual([]);
  });
});

describe("an operator's own status", () => {
  const setOperator = (id: string, status: string, reason: string, token = regulator) => t.call('POST', `/v1/operators/${id}/status`, { token, json: { status, reason } });

  it("a suspended operator's users are refused with the tokens they hold, its licences keep their status, and reinstating restores them", async () => {
    const suspended = await setOperator('harbour-credit', 'suspended', 'annual inspection');
    expect(suspended.json).toMatchObject({ id: 'harbour-credit', status: 'suspended', statusReason: 'annual inspection' });
    try {
      const refused = await t.call('GET', '/v1/datasets', { token: otherAnalyst });
      expect(refused.json.error.code).toBe('LICENCE_INACTIVE');
      const licences = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences.filter((licence: { operatorId: string }) => licence.operatorId === 'harbour-credit');
      expect(licences.map((licence: { status: string }) => licence.status)).toContain('active');
      expect((await t.call('GET', '/v1/datasets', { token: analyst })).status).toBe(200);
    } finally {
      await setOperator('harbour-credit', 'active', 'inspection closed');
    }
    expect((await t.call('GET', '/v1/datasets', { token: otherAnalyst })).status).toBe(200);
  });

  it('users of a suspended operator still read their operator record and licences, with the reason, and nothing else', async () => {
    await setOperator('lingang-analytics', 'suspended', 'overdue security assessment');
    try {
      expect((await t.call('GET', '/v1/operators/lingang-analytics', { token: analyst })).json).toMatchObject({ status: 'suspended', statusReason: 'overdue security assessment' });
      expect((await t.call('GET', '/v1/licences', { token: analyst })).json.licences.length).toBeGreaterThan(0);
      expect((await t.call('GET', '/v1/datasets', { token: analyst })).json.error.code).toBe('LICENCE_INACTIVE');
      expect((await t.call('GET', '/v1/operators/harbour-credit', { token: analyst })).status).toBe(404);
    } finally {
      await setOperator('lingang-analytics', 'active', 'assessment filed');
    }
  });

  it('a job queued before its operator was suspended does not run', async () => {
    const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['bus_routes'], purpose: 'operator test', sql: 'SELECT town, count(*) AS stops FROM bus_routes GROUP BY town' } });
    await setOperator('lingang-analytics', 'suspended', 'inspection');
    try {
      const [queued] = await t.platform.db.select().from(jobs).where(eq(jobs.id, submitted.json.id));
      expect(await t.rerunWithPlan(submitted.json.id, queued!.plan)).toMatchObject({ status: 'failed', statusCode: 'LICENCE_INACTIVE', output: null });
    } finally {
      await setOperator('lingang-analytics', 'active', 'inspection closed');
    }
  });

  it('each change is recorded with its reason, and asking for the status the operator has records nothing', async () => {
    await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'standing-test', name: 'Standing Test' } });
    await setOperator('standing-test', 'suspended', 'late filing');
    expect((await setOperator('standing-test', 'suspended', 'late filing again')).json.statusReason).toBe('late filing');
    await setOperator('standing-test', 'active', 'filed');
    const ofThis = async (type: string) => (await auditEvents(type)).filter((event: { operator: string }) => event.operator === 'standing-test');
    expect(await ofThis('operator.suspended')).toEqual([expect.objectContaining({ actor: 'regulator-data-dept', details: { from: 'active', to: 'suspended', reason: 'late filing' } })]);
    expect(await ofThis('operator.reinstated')).toEqual([expect.objectContaining({ details: { from: 'suspended', to: 'active', reason: 'filed' } })]);
  });

  it('revocation is final', async () => {
    await t.call('POST', '/v1/operators', { token: regulator, json: { id: 'revoked-test', name: 'Revoked Test' } });
    expect((await setOperator('revoked-test', 'revoked', 'fraud')).json.status).toBe('revoked');
    const reinstated = await setOperator('revoked-test', 'active', 'appeal');
    expect(reinstated.status).toBe(409);
    expect(reinstated.json.error.code).toBe('INVALID_TRANSITION');
  });

  it("only regulators change an operator's status; its own users learn only that they may not, others that it does not exist", async () => {
    const own = await setOperator('lingang-analytics', 'active', 'please', analyst);
    expect(own.json.error.code).toBe('FORBIDDEN');
    expect((await setOperator('lingang-analytics', 'suspended', 'rival', otherAnalyst)).status).toBe(404);
    expect((await setOperator('no-such-operator', 'suspended', 'x')).status).toBe(404);
  });

  it('a change without a reason is refused', async () => {
    const response = await t.call('POST', '/v1/operators/harbour-credit/status', { token: regulator, json: { status: 'suspended' } });
    expect(response.status).toBe(400);
    expect(response.json.error.code).toBe('VALIDATION_FAILED');
  });
});
