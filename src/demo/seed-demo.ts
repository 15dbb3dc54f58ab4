import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import { appendAuditEvents } from '../audit/audit-log.js';
import { makeCreditCode } from '../catalog/identity-numbers.js';
import { findDataset, latestVersion } from '../catalog/catalogue.js';
import { datasetRegistrationSchema, type DatasetRegistration } from '../catalog/registration.js';
import { fileRegistration, registrationSchema } from '../governance/registrations.js';
import { and, eq } from 'drizzle-orm';
import { institutions, licences, operators, principals, privacyBudgets, registrations } from '../db/schema.js';
import { loadDatasetVersion } from '../domain-store/load-version.js';
import { mintToken } from '../identity/tokens.js';
import { createLicence, operatorCreatedEvent } from '../licensing/licences.js';
import { principalCreatedEvent } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { demoDatasets, demoInstitutions } from './demo-catalogue.js';
import { generateDemoData } from './generate-demo-data.js';
import { ensureDemoProducts } from './demo-products.js';
import { findPublicInterestGrant, grantPublicInterest } from '../products/public-interest.js';
import { setBudgetCap } from '../privacy/budget-ledger.js';
import { chinaDay } from '../time/china-time.js';

export type Progress = (done: number, total: number, label: string) => void;

/** The demo principals, by the names dev-tokens.json uses (DESIGN section 7). */
export const demoPrincipals = [
  { key: 'operator', id: 'analyst-lingang-analytics', role: 'operator', displayName: '临港数智分析 · 分析师', operatorId: 'lingang-analytics' },
  { key: 'operator2', id: 'analyst-harbour-credit', role: 'operator', displayName: '港城征信 · 分析师', operatorId: 'harbour-credit' },
  { key: 'regulator', id: 'regulator-data-dept', role: 'regulator', displayName: '管委会数据部门 · 监管员' },
  // L4 and important outputs, and requests from outside Lingang, need two regulators' decisions: the second one's
  // token lets a newcomer take them through with dev tokens alone.
  { key: 'regulator2', id: 'regulator-second-reviewer', role: 'regulator', displayName: '管委会数据部门 · 复核监管员' },
  { key: 'institution', id: 'clerk-power-utility', role: 'institution', displayName: '临港供电公司 · 数据专员', institutionId: 'power-utility' },
  { key: 'consumer', id: 'consumer-east-sea-bank', role: 'consumer', displayName: '东海银行 · 接口调用方' },
  { key: 'admin', id: 'admin-data-centre', role: 'admin', displayName: '大数据中心 · 平台管理员' },
  { key: 'assessor', id: 'assessor-third-party', role: 'assessor', displayName: '第三方评估机构 · 评估员' },
] as const;

// Made-up credit codes of Pudong (310115), valid by their check characters like the demo enterprises'.
const demoOperators = [
  { id: 'lingang-analytics', name: 'Lingang Analytics Co., Ltd.', nameZh: '临港数智分析有限公司', creditCode: makeCreditCode('310115', 'MA7LG0A1') },
  { id: 'harbour-credit', name: 'Harbour Credit Services Co., Ltd.', nameZh: '港城征信服务有限公司', creditCode: makeCreditCode('310115', 'MA7HC0B2') },
];

/** Demo datasets delivered more than once (generateDemoData makes a later file for each extra version). */
const demoDeliveries: Record<string, number> = { enterprises: 2 };

/**
 * First run: registers the demo institutions and catalogue, generates and loads the demo data, creates the demo
 * operators, licences and principals. Each step checks what exists, so a run that died half-way resumes.
 */
export async function seedDemo(platform: Platform, progress: Progress = () => {}): Promise<{ generated: boolean }> {
  const { db } = platform;
  await db.insert(institutions).values(demoInstitutions.map((institution) => ({ ...institution }))).onConflictDoNothing();

  // Art. 8: each institution's tables enter the catalogue through a registration the data centre filed.
  const unregistered = new Map<string, DatasetRegistration[]>();
  for (const { institutionId, ...entry } of demoDatasets) {
    if (!(await findDataset(db, entry.id))) unregistered.set(institutionId, [...(unregistered.get(institutionId) ?? []), datasetRegistrationSchema.parse(entry)]);
  }
  for (const [institutionId, tables] of unregistered) await fileDemoRegistration(platform, institutionId, tables);

  // How many versions each demo dataset has: a run that died half-way loads only what is still missing.
  const loaded = new Map<string, number>();
  for (const entry of demoDatasets) loaded.set(entry.id, (await latestVersion(db, entry.id))?.versionNumber ?? 0);
  let generated = false;
  if ([...loaded.entries()].some(([id, count]) => count < (demoDeliveries[id] ?? 1))) {
    generated = true;
    const stagingDir = path.join(platform.config.dataDir, '.demo-staging');
    fs.rmSync(stagingDir, { recursive: true, force: true });
    try {
      const files = await generateDemoData(stagingDir, {
        seed: platform.config.demoSeed,
        scale: platform.config.demoScale,
        // A run resumed on a later day ends the datasets it still loads later too; the identities are the same.
        lastDay: platform.config.demoEnd === 'yesterday' ? chinaDay(new Date(platform.clock().getTime() - 86_400_000)) : platform.config.demoEnd,
        onProgress: (done, total, label) => progress(done, total * 2, `generating ${label}`),
      });
      const toLoad = files.filter((file) => loaded.get(file.datasetId)! < file.version);
      for (const [index, file] of toLoad.entries()) {
        progress(toLoad.length + index, toLoad.length * 2, `loading ${file.datasetId}`);
        const dataset = (await findDataset(db, file.datasetId))!;
        await loadDatasetVersion({ db, store: platform.store, clock: platform.clock }, { dataset, file: file.file, format: file.format, loadedBy: 'demo-seed' });
      }
      progress(1, 1, 'demo data loaded');
    } finally {
      fs.rmSync(stagingDir, { recursive: true, force: true });
    }
  }

  // Recorded like the API's creations, so that the log names every operator and account from the first run on.
  const now = platform.clock();
  await db.transaction(async (tx) => {
    const created = await tx.insert(operators).values(demoOperators.map((operator) => ({ ...operator, createdBy: 'demo-seed', createdAt: now }))).onConflictDoNothing().returning();
    await appendAuditEvents(tx, created.map((operator) => operatorCreatedEvent(operator, 'demo-seed')), now);
  });
  await ensureDemoLicences(platform);
  await db.transaction(async (tx) => {
    const created = await tx
      .insert(principals)
      .values(demoPrincipals.map(({ key: _key, ...principal }) => ({ ...principal, createdAt: now })))
      .onConflictDoNothing()
      .returning();
    await appendAuditEvents(tx, created.map((principal) => principalCreatedEvent(principal, 'demo-seed')), now);
  });
  await ensureDemoProducts(platform);
  await ensureDemoPublicInterestGrant(platform);
  await ensureDemoPrivacyBudget(platform);
  return { generated };
}

/**
 * The demo consumer holds a public-interest grant (an inclusive-finance programme), so that both uses can be
 * tried with the dev token; a grant revoked later is left revoked.
 */
async function ensureDemoPublicInterestGrant(platform: Platform): Promise<void> {
  if (await findPublicInterestGrant(platform.db, 'consumer-east-sea-bank')) return;
  const now = platform.clock();
  await grantPublicInterest(
    platform.db,
    'consumer-east-sea-bank',
    { basis: '普惠金融：小微企业开户身份核验（演示授权）', validUntil: new Date(Date.UTC(now.getUTCFullYear() + 3, 0, 1)).toISOString() },
    'regulator-data-dept',
    now,
  );
}

/**
 * L4 data is released only with differential privacy, against a budget only a regulator sets: the demo's L4 licence
 * (harbour-credit, transit trips) gets one as a regulator would set it — ε 10 and δ 10⁻⁵ in all, audited like the
 * API's — so that a DP job can be tried with the dev tokens. A budget changed or spent later is left as it is.
 */
async function ensureDemoPrivacyBudget(platform: Platform): Promise<void> {
  const [licence] = await platform.db.select({ id: licences.id }).from(licences).where(eq(licences.operatorId, 'harbour-credit'));
  if (!licence) return;
  const [existing] = await platform.db.select({ id: privacyBudgets.id }).from(privacyBudgets).where(and(eq(privacyBudgets.licenceId, licence.id), eq(privacyBudgets.datasetId, 'transit_trips')));
  if (existing) return;
  await setBudgetCap(platform.db, { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 10, deltaCap: 1e-5, reason: 'demo budget, so that the dev tokens can run a differentially private job' }, 'demo-seed', platform.clock());
}

async function fileDemoRegistration(platform: Platform, institutionId: string, tables: DatasetRegistration[]): Promise<void> {
  const now = platform.clock();
  const institution = demoInstitutions.find((entry) => entry.id === institutionId)!;
  const content = registrationSchema.parse({
    kind: 'system',
    name: `${institution.nameZh}业务系统`,
    description: `${institution.nameZh}履职产生的公共数据（演示登记）`,
    system: { ownerDepartment: '数据管理部门', deployment: '临港新片区政务云', liveSince: '2023-01-01' },
    tables,
  });
  const id = `reg_${crypto.randomUUID()}`;
  await platform.db.transaction(async (tx) => {
    await tx.insert(registrations).values({ id, institutionId, submittedBy: 'demo-seed', kind: 'system', name: content.name, content, findings: [], status: 'submitted', submission: 1, createdAt: now, updatedAt: now });
    await fileRegistration(tx as never, { id, institutionId, submittedBy: 'demo-seed', content, tables, reviewer: 'demo-seed' }, now);
  });
}

async function ensureDemoLicences(platform: Platform): Promise<void> {
  const { db } = platform;
  const now = platform.clock();
  const validFrom = new Date(Date.UTC(now.getUTCFullYear(), 0, 1)).toISOString();
  const validUntil = new Date(Date.UTC(now.getUTCFullYear() + 3, 0, 1)).toISOString();
  const existing = await db.select({ operatorId: licences.operatorId }).from(licences);
  const licensed = new Set(existing.map((row) => row.operatorId));
  if (!licensed.has('lingang-analytics')) {
    await createLicence(
      db,
      'lingang-analytics',
      {
        title: '园区能源与产业分析（公益+行业）',
        scope: [
          { dataset: 'power_readings' },
          { dataset: 'water_readings' },
          { dataset: 'gas_readings' },
          { dataset: 'enterprises' },
          { dataset: 'bus_routes' },
        ],
        purposes: ['public_interest', 'industry'],
        maxGrade: 'L3',
        validFrom,
        validUntil,
        feeMode: 'capped_fee',
      },
      'demo-seed',
      { now },
    );
  }
  if (!licensed.has('harbour-credit')) {
    await createLicence(
      db,
      'harbour-credit',
      {
        title: '企业信用核验与出行研究（公益）',
        scope: [
          { dataset: 'enterprises' },
          { dataset: 'power_readings', columns: ['account_id', 'customer_type', 'uscc', 'town', 'industry_code', 'month', 'paid_on_time'] },
          { dataset: 'residents' },
          { dataset: 'transit_trips' },
          { dataset: 'bus_routes' },
        ],
        purposes: ['public_interest'],
        maxGrade: 'L4',
        validFrom,
        validUntil,
        feeMode: 'free',
      },
      'demo-seed',
      { now },
    );
  }
}

/** Dev mode only: fresh tokens for the demo principals, written to DATA_DIR/dev-tokens.json with mode 0600. */
export async function writeDevTokens(platform: Platform): Promise<string> {
  if (platform.config.mode !== 'dev') throw new Error('dev tokens are never written in production mode');
  const settings = {
    issuer: platform.config.tokenIssuer,
    audience: platform.config.tokenAudience,
    maxAgeSeconds: platform.config.tokenMaxAgeSeconds,
  };
  const tokens: Record<string, string> = {};
  for (const principal of demoPrincipals) {
    tokens[principal.key] = await mintToken(platform.keys, settings, principal.id, { now: platform.clock() });
  }
  const file = path.join(platform.config.dataDir, 'dev-tokens.json');
  fs.writeFileSync(`${file}.tmp`, JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
  fs.renameSync(`${file}.tmp`, file);
  return file;
}
