import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let admin: string;
let regulator: string;
let jobId: string;
let released: { columns: Array<{ name: string }>; rows: unknown[][] };

const entry = { title: 'Enterprises by town', titleZh: '分镇企业数与注册资本', description: 'Firms and registered capital by town, from a released job.', category: 'economy' };

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, workers: 1 });
  admin = await t.tokenFor('admin-data-centre');
  regulator = await t.tokenFor('regulator-data-dept');
  const analyst = await t.tokenFor('analyst-lingang-analytics');
  const submitted = await t.call('POST', '/v1/jobs', { token: analyst, json: { datasets: ['enterprises'], purpose: 'derived test', sql: 'SELECT town, count(*) AS firms, sum(registered_capital) AS capital FROM enterprises GROUP BY town ORDER BY town' } });
  jobId = submitted.json.id;
  expect((await t.waitForJob(jobId)).status).toBe('released');
  released = (await t.call('GET', `/v1/jobs/${jobId}/result`, { token: analyst })).json;
}, 120_000);
afterAll(() => t?.close());

const propose = (json: Record<string, unknown>, token = admin) => t.call('POST', '/v1/derived-datasets', { token, json: { job: jobId, ...entry, ...json } });
const decide = (id: string, json: Record<string, unknown>, token = regulator) => t.call('POST', `/v1/derived-datasets/${id}/decision`, { token, json });

describe('released outputs as high-quality open datasets (art. 14)', () => {
  it('are proposed by the data centre and decided by a regulator, never by the proposer or an operator', async () => {
    expect((await propose({ id: 'firms_by_town_x' }, await t.tokenFor('analyst-lingang-analytics'))).status).toBe(403);
    const proposal = await propose({ id: 'firms_by_town_x' });
    expect(proposal.status).toBe(201);
    expect(proposal.json).toMatchObject({ job: jobId, dataset: 'firms_by_town_x', status: 'proposed', proposedBy: 'admin-data-centre' });
    expect((await decide(proposal.json.id, { decision: 'publish' }, admin)).status).toBe(403);
    expect((await decide(proposal.json.id, { decision: 'reject' })).json.error.code).toBe('VALIDATION_FAILED');
    expect((await decide(proposal.json.id, { decision: 'reject', reason: '口径需与统计局发布一致' })).json).toMatchObject({ status: 'rejected', decisionReason: '口径需与统计局发布一致' });
  });

  it('once published, are an L1 open catalogue entry of the data centre holding exactly the released cells', async () => {
    const proposal = await propose({ id: 'firms_by_town' });
    expect((await decide(proposal.json.id, { decision: 'publish' })).json.status).toBe('published');
    const dataset = (await t.call('GET', '/v1/datasets/firms_by_town', { token: regulator })).json;
    expect(dataset).toMatchObject({ grade: 'L1', openData: true, sharingType: 'unconditional', institution: { id: 'lingang-data-centre' } });
    expect(dataset.legalBasis).toContain(jobId);
    // Its generated column descriptions come in both languages, and it has no Chinese description it was not given.
    expect(dataset.columns.find((column: { name: string }) => column.name === 'town')).toMatchObject({ description: `group key of released job ${jobId}`, descriptionZh: `已发布任务 ${jobId} 的分组` });
    expect(dataset.descriptionZh).toBeNull();
    const [version] = dataset.versions;
    expect(version.rowCount).toBe(released.rows.length);

    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`ATTACH '${t.platform.store.snapshotPath('firms_by_town', dataset.latestVersion)}' AS s (READ_ONLY)`);
    const rows = (await connection.runAndReadAll('SELECT town, firms, capital FROM s.data ORDER BY cell')).getRowsJson();
    instance.closeSync();
    expect(rows.map((row) => row.map((value) => (value === null ? null : typeof value === 'string' && /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value)))).toEqual(released.rows);
    // Suppressed cells were released empty, and stay empty.
    expect(released.rows.some((row) => row.includes(null))).toBe(true);
  });

  it('carry the description in Chinese they are proposed with into the catalogue', async () => {
    const proposal = await propose({ id: 'firms_by_town_zh', descriptionZh: '由已发布的分镇企业数与注册资本整理' });
    expect((await decide(proposal.json.id, { decision: 'publish' })).json.status).toBe('published');
    expect((await t.call('GET', '/v1/datasets/firms_by_town_zh', { token: regulator })).json.descriptionZh).toBe('由已发布的分镇企业数与注册资本整理');
  });

  it('sent six at once for one id, store one proposal and answer the rest 409', async () => {
    const answers = await Promise.all(Array.from({ length: 6 }, () => propose({ id: 'firms_by_town_burst' })));
    expect(answers.map((answer) => answer.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    const stored = (await t.call('GET', '/v1/derived-datasets', { token: regulator })).json.proposals.filter((proposal: { dataset: string }) => proposal.dataset === 'firms_by_town_burst');
    expect(stored).toHaveLength(1);
  });

  it('refuse an id the catalogue already holds', async () => {
    expect((await propose({ id: 'enterprises' })).json.error.code).toBe('DATASET_EXISTS');
  });

  it('refuse a job that was not released', async () => {
    expect((await propose({ id: 'no_such_job', job: 'job_missing' })).status).toBe(404);
  });
});
