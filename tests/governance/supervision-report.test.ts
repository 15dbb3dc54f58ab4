import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leafHash, verifyInclusion } from '../../src/audit/merkle.js';
import { verifyCheckpointSignature } from '../../src/audit/verify-log.js';
import { principals } from '../../src/db/schema.js';
import { supervisionIndicators, type Indicator } from '../../src/governance/supervision-report.js';
import { demoDatasets } from '../../src/demo/demo-catalogue.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

// Monday 2 November 2026, 10:00 in Shanghai.
const monday = new Date('2026-11-02T02:00:00Z');
let t: TestPlatform;
let regulator: string;

/** Which leaves may make up each indicator: a number traced to a leaf of another kind would be a wrong trace. */
const allowedTypes: Record<Indicator, RegExp> = {
  datasetsRegistered: /^catalogue\.registered$/,
  datasetsWithoutFiling: /^catalogue\.registered$/,
  datasetsWithData: /^dataset\.version-loaded$/,
  catalogueCompleteness: /^(catalogue\.registered|dataset\.version-loaded)$/,
  datasetsStale: /^(catalogue\.registered|dataset\.version-loaded)$/,
  qualityScore: /^quality\.(checked|flagged)$/,
  qualityFailing: /^quality\.flagged$/,
  sharingReceived: /^sharing\.requested$/,
  sharingAnsweredOnTime: /^sharing\.(source|committee)-(approve|refuse)$/,
  sharingAnsweredLate: /^sharing\.(source|committee)-(approve|refuse)$/,
  sharingOverdue: /^sharing\.requested$/,
  sharingRefused: /^sharing\.(source|committee)-refuse$/,
  refusalsWithoutLegalBasis: /^sharing\.(source|committee)-refuse$/,
  sharingRequested: /^sharing\.requested$/,
  disputesReceived: /^dispute\.raised$/,
  disputesHandledOnTime: /^dispute\.(corrected|rejected)$/,
  disputesHandledLate: /^dispute\.(corrected|rejected)$/,
  disputesOverdue: /^dispute\.raised$/,
  incidentsOnItsData: /^incident\.recorded$/,
  externalDeliveriesOfItsData: /^external\.delivered$/,
  openDataDemandsOnItsData: /^open-data\.demanded$/,
};

beforeAll(async () => {
  t = await createTestPlatform({ demo: true, now: monday });
  await t.platform.db.insert(principals).values({ id: 'clerk-market-regulator', role: 'institution', displayName: '市场监管局 · 数据专员', institutionId: 'market-regulator' });
  const power = await t.tokenFor('clerk-power-utility');
  const market = await t.tokenFor('clerk-market-regulator');
  regulator = await t.tokenFor('regulator-data-dept');
  // A little of every workflow on the demo data: sharing answered on time, late, refused and left open; a channel
  // pulled beyond its scope; a dispute answered and one left open.
  const ask = async () => (await t.call('POST', '/v1/sharing-requests', { token: power, json: { dataset: 'enterprises', columns: ['uscc', 'name'], duty: '核实用电企业', scenario: '报装审核' } })).json.id;
  const onTime = await ask();
  await t.call('POST', `/v1/sharing-requests/${onTime}/decision`, { token: market, json: { decision: 'approve' } });
  const refused = await ask();
  await t.call('POST', `/v1/sharing-requests/${refused}/decision`, { token: market, json: { decision: 'refuse', reason: '重复申请', legalBasis: '《临港新片区公共数据管理办法》第十五条' } });
  const late = await ask();
  await ask();
  const channel = (await t.call('GET', '/v1/channels', { token: power })).json.channels[0].id;
  await t.call('GET', `/v1/channels/${channel}/data?columns=uscc,legal_rep_id`, { token: power });
  const disputed = (await t.call('POST', '/v1/disputes', { token: power, json: { dataset: 'enterprises', column: 'name', description: '名称重复' } })).json.id;
  await t.call('POST', '/v1/disputes', { token: power, json: { dataset: 'enterprises', description: '状态有误' } });
  await t.call('POST', `/v1/disputes/${disputed}/answer`, { token: market, json: { outcome: 'rejected', answer: '经核实无误' } });
  // An outside unit's request for the enterprise register, exported for the city platform (art. 19).
  const [filer, reviewer] = await t.twoRegulators();
  const external = (await t.call('POST', '/v1/external-requests', { token: filer, json: { requester: '上海市奉贤区经济委员会', scenario: '资金审核', items: [{ dataset: 'enterprises', columns: ['uscc', 'status'] }], safeguards: '专人专机处理' } })).json.id;
  await t.call('POST', `/v1/external-requests/${external}/decision`, { token: reviewer, json: { decision: 'approve' } });
  expect((await t.call('GET', `/v1/external-requests/${external}/data?dataset=enterprises`, { token: await t.tokenFor('admin-data-centre') })).status).toBe(200);
  // Two demands that the enterprise register be opened (art. 20), and one naming no catalogue entry.
  const bank = await t.tokenFor('consumer-east-sea-bank');
  for (const subject of ['企业按行业的存续数量', '企业注册地分布']) await t.call('POST', '/v1/open-data-demands', { token: bank, json: { subject, scenario: '信贷行业投放研究', dataset: 'enterprises' } });
  await t.call('POST', '/v1/open-data-demands', { token: bank, json: { subject: '公交实时到站', scenario: '出行应用' } });
  t.clock.now = new Date('2026-11-20T02:00:00Z');
  await t.call('POST', `/v1/sharing-requests/${late}/decision`, { token: await t.tokenFor('clerk-market-regulator'), json: { decision: 'approve' } });
  regulator = await t.tokenFor('regulator-data-dept');
}, 120_000);

afterAll(async () => {
  await t?.close();
});

const report = async () => (await t.call('GET', '/v1/reports/supervision?evidence=true', { token: regulator })).json;
const ownDatasets = (institution: string) => demoDatasets.filter((entry) => entry.institutionId === institution).map((entry) => entry.id);
const rowOf = (json: { institutions: Array<{ institution: string }> }, id: string) => json.institutions.find((row) => row.institution === id) as Record<string, any>;

describe('the supervision report on the demo data', () => {
  it('shows each indicator for the source of the shared data', async () => {
    const market = rowOf(await report(), 'market-regulator');
    expect(market).toMatchObject({
      datasetsRegistered: 1,
      // The demo's tables come with registrations the data centre filed.
      datasetsWithoutFiling: 0,
      datasetsWithData: 1,
      catalogueCompleteness: 1,
      qualityFailing: 1,
      sharingReceived: 4,
      sharingAnsweredOnTime: 2,
      sharingAnsweredLate: 1,
      sharingOverdue: 1,
      sharingRefused: 1,
      refusalsWithoutLegalBasis: 0,
      disputesReceived: 2,
      disputesHandledOnTime: 1,
      disputesHandledLate: 0,
      disputesOverdue: 1,
      incidentsOnItsData: 1,
      externalDeliveriesOfItsData: 1,
      openDataDemandsOnItsData: 2,
    });
    expect(market.qualityScore).toBeGreaterThan(0);
    expect(market.qualityScore).toBeLessThan(100);
    // The enterprise register is updated daily; its last load was weeks ago by now.
    expect(market.datasetsStale).toBe(1);
    expect(rowOf(await report(), 'power-utility')).toMatchObject({ sharingRequested: 4, datasetsRegistered: 1, openDataDemandsOnItsData: 0 });
  });

  it('traces every number to audit leaves that verify against a signed checkpoint', async () => {
    const json = await report();
    const checkpoint = (await t.call('GET', '/v1/audit/checkpoint', { token: regulator })).json;
    const jwks = (await t.call('GET', '/.well-known/jwks.json')).json;
    await verifyCheckpointSignature(checkpoint, jwks);
    const root = Buffer.from(checkpoint.root_hash, 'hex');
    const fetched = new Map<number, { leaf: string; event: { type: string; details: Record<string, unknown>; datasets?: string[] } }>();
    const leafAt = async (index: number) => {
      if (!fetched.has(index)) {
        const [entry] = (await t.call('GET', `/v1/audit/entries?start=${index}&end=${index + 1}`, { token: regulator })).json.entries;
        const proof = (await t.call('GET', `/v1/audit/proofs/inclusion?index=${index}&size=${checkpoint.tree_size}`, { token: regulator })).json;
        verifyInclusion(index, checkpoint.tree_size, leafHash(entry.leaf), proof.inclusion_path.map((hash: string) => Buffer.from(hash, 'hex')), root);
        fetched.set(index, entry);
      }
      return fetched.get(index)!;
    };
    let traced = 0;
    for (const row of json.institutions) {
      for (const indicator of supervisionIndicators) {
        const indexes: number[] = row.evidence[indicator];
        if (indicator === 'catalogueCompleteness') {
          expect(row[indicator]).toBe(row.datasetsRegistered > 0 ? row.datasetsWithData / row.datasetsRegistered : null);
        } else if (indicator === 'qualityScore') {
          const scores = await Promise.all(indexes.map(async (index) => Number((await leafAt(index)).event.details.score)));
          expect(row[indicator]).toBe(scores.length ? Math.round((10 * scores.reduce((sum, score) => sum + score, 0)) / scores.length) / 10 : null);
        } else {
          expect(indexes.length).toBe(row[indicator]);
        }
        for (const index of indexes) {
          const { event } = await leafAt(index);
          expect(event.type).toMatch(allowedTypes[indicator as Indicator]);
          // Each leaf names the institution it is counted for, or a dataset of that institution.
          const names = [event.details.institution, event.details.requester, event.details.raiser];
          if (indicator === 'openDataDemandsOnItsData') expect(event.datasets!.some((id) => ownDatasets(row.institution).includes(id))).toBe(true);
          else if (indicator !== 'incidentsOnItsData') expect(names).toContain(row.institution);
          traced++;
        }
      }
    }
    expect(traced).toBeGreaterThan(40);
  });

  it('is read by a third-party assessor alike, who lists every licence and the log, and is refused reviews, jobs and every decision', async () => {
    const assessor = await t.tokenFor('assessor-third-party');
    const asAssessor = (await t.call('GET', '/v1/reports/supervision?evidence=true', { token: assessor })).json;
    expect(asAssessor.institutions).toEqual((await report()).institutions);
    expect((await t.call('GET', '/v1/audit/entries?limit=5&type=sharing.*', { token: assessor })).json.entries).toHaveLength(5);
    expect((await t.call('GET', '/v1/incidents', { token: assessor })).status).toBe(200);
    expect((await t.call('GET', '/v1/datasets/enterprises/uses', { token: assessor })).json.externalDeliveries.length).toBeGreaterThan(0);
    const licences = (await t.call('GET', '/v1/licences', { token: regulator })).json.licences as Array<{ id: string; operatorId: string }>;
    expect((await t.call('GET', '/v1/licences', { token: assessor })).json.licences).toEqual(licences);
    expect(new Set(licences.map((licence) => licence.operatorId)).size).toBeGreaterThan(1);

    const refused: Array<[string, string, Record<string, unknown>?]> = [
      ['GET', '/v1/reviews'],
      ['GET', '/v1/jobs'],
      ['GET', '/v1/principals'],
      ['GET', '/v1/budgets'],
      ['POST', `/v1/licences/${licences[0]!.id}/status`, { status: 'suspended', reason: '评估发现问题' }],
      ['POST', '/v1/backups', {}],
      ['POST', '/v1/open-data-demands', { subject: '各镇月度用电量', scenario: '评估' }],
    ];
    for (const [method, path, json] of refused) expect({ path, status: (await t.call(method as 'GET', path, { token: assessor, ...(json ? { json } : {}) })).status }).toEqual({ path, status: 403 });
  });

  it('counts a catalogue entry registered without a filed registration (art. 8)', async () => {
    const power = await t.tokenFor('clerk-power-utility');
    const entry = {
      id: 'charging_piles', title: 'Charging piles', titleZh: '充电桩', description: 'Public charging piles', category: 'infrastructure', grade: 'L1', openData: true,
      sharingType: 'unconditional', legalBasis: '《临港新片区公共数据管理办法》第十条', updateFrequency: 'static', privacyUnit: 'pile_id',
      columns: [{ name: 'pile_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Pile id' }],
    };
    expect((await t.call('POST', '/v1/datasets', { token: power, json: entry })).status).toBe(201);
    const row = rowOf(await report(), 'power-utility');
    expect(row).toMatchObject({ datasetsRegistered: 2, datasetsWithoutFiling: 1 });
  });

  it('counts a flow only in the period it happened in', async () => {
    const before = await t.call('GET', `/v1/reports/supervision?from=2026-01-01T00:00:00%2B08:00&to=2026-11-01T00:00:00%2B08:00`, { token: regulator });
    expect(rowOf(before.json, 'market-regulator')).toMatchObject({ sharingReceived: 0, disputesReceived: 0, datasetsRegistered: 0 });
  });
});
