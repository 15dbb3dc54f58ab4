/**
 * Worked examples for the API reference, by operation: what a request looks like and what comes back. They are
 * merged into /openapi.json where a route does not carry its own, and a test requires one for every operation.
 * Values are the demo's (ids, datasets, institutions), so each can be tried against `npm start`.
 */
type Example = { request?: unknown; response: unknown };

const job = {
  id: 'job_7d1c2a9e-5b1f-4c53-9f0e-3a6b2e1d4c8f',
  status: 'released',
  stage: null,
  code: 'CHECKED_WITH_SUPPRESSION',
  reason: null,
  datasets: ['power_readings'],
  datasetVersions: { power_readings: '5f2c…e91a' },
  kind: 'aggregate',
  differentialPrivacy: null,
  grade: 'L3',
  purpose: '新片区能源规划（公益）',
  sqlHash: '9b0e…41f2',
  policyHash: 'c3d1…7a0b',
  reviewersRequired: 1,
  releaseLeafIndex: 412,
  createdAt: '2026-11-27T02:00:00.000Z',
  startedAt: '2026-11-27T02:00:01.120Z',
  finishedAt: '2026-11-27T02:00:02.480Z',
  releasedAt: '2026-11-27T03:15:40.000Z',
};
const licence = {
  id: 'lic_f1ffefd7-7566-43a5-93c0-510ee1013964',
  operatorId: 'lingang-analytics',
  title: '园区能源与产业分析（公益+行业）',
  scope: [{ dataset: 'power_readings' }, { dataset: 'enterprises' }],
  purposes: ['public_interest', 'industry'],
  maxGrade: 'L3',
  validFrom: '2026-01-01T00:00:00.000Z',
  validUntil: '2029-01-01T00:00:00.000Z',
  feeMode: 'capped_fee',
  status: 'active',
  statusReason: null,
};
const budget = { id: 'bud_2b…', licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 5, epsilonSpent: 1.2, epsilonRemaining: 3.8, deltaCap: 0, deltaSpent: 0, updatedAt: '2026-11-27T02:00:00.000Z' };
const derivedContent = {
  job: 'job_8f14e45f-ceea-467f-a8d3-2a1c5b7e9d01',
  id: 'enterprise_power_by_town',
  title: 'Enterprise power use by town and industry',
  titleZh: '分镇分行业企业用电量',
  description: 'Monthly kWh of enterprises by town and GB/T 4754 industry class, from a released job; suppressed cells are empty.',
  category: 'utilities',
};
const { job: derivedJob, id: derivedId, ...derivedEntry } = derivedContent;
const derivedProposal = { id: 'der_0c9b7a6e-5d4c-4b3a-9f2e-1d0c9b8a7f6e', job: derivedJob, dataset: derivedId, ...derivedEntry, status: 'proposed', proposedBy: 'admin-data-centre', decidedBy: null, decisionReason: null, createdAt: '2026-11-28T02:00:00.000Z', decidedAt: null };
const externalRequestContent = {
  requester: '上海市奉贤区经济委员会',
  scenario: '核对跨区经营企业的登记状态，用于产业扶持资金审核',
  items: [{ dataset: 'enterprises', columns: ['uscc', 'industry_code', 'status'] }],
  safeguards: '专人专机处理，数据仅用于资金审核，审核结束后30日内删除并书面报告',
};
const externalRequest = {
  id: 'ext_5d0c2f7e-1b3a-4e9d-8c6f-2a7b9e1d4c30',
  ...externalRequestContent,
  status: 'pending',
  recordedBy: 'regulator-data-dept',
  decidedBy: null,
  decisionReason: null,
  decidedAt: null,
  deliveries: [] as unknown[],
  createdAt: '2026-11-28T02:00:00.000Z',
};
const externalDelivery = { dataset: 'enterprises', version: 2, contentHash: '447813207b14a9151e531f8e6ff5164e1052e890438b6c8bed545976a256aed8', rows: 12000, by: 'admin-data-centre', at: '2026-11-29T05:00:00.000Z' };
const channel = {
  id: 'chan_3f0c…',
  request: 'share_9a1e…',
  institution: 'power-utility',
  dataset: 'enterprises',
  columns: ['uscc', 'name', 'status'],
  purpose: '核实用电企业登记信息（法定职责） — 企业用电报装审核',
  pullsPerDay: 24,
  status: 'open',
  statusReason: null,
  lastUsedAt: '2026-11-27T02:00:00.000Z',
  freezesOn: '2027-02-25',
  openedAt: '2026-11-20T02:00:00.000Z',
};
const dispute = {
  id: 'disp_51c2…',
  raiser: 'power-utility',
  dataset: 'enterprises',
  column: 'name',
  recordReference: '户号 1002003',
  description: '企业名称与营业执照不一致',
  status: 'open',
  dueOn: '2026-12-04',
  deadlineProvisional: false,
  overdue: false,
  answer: null,
  answeredOn: null,
  answeredOnTime: null,
  createdAt: '2026-11-27T02:00:00.000Z',
};
const registrationContent = {
  kind: 'system',
  name: '智慧水务管网系统',
  description: '供水管网设备与巡检',
  system: { ownerDepartment: '管网运行部', deployment: '临港政务云', liveSince: '2024-06-01' },
  tables: [{ id: 'fire_hydrants', title: 'Fire hydrants', titleZh: '消防栓', description: 'Hydrants and their pressure class', category: 'infrastructure', grade: 'L1', openData: true, sharingType: 'unconditional', legalBasis: '《临港新片区公共数据管理办法》第八条', updateFrequency: 'quarterly', privacyUnit: 'hydrant_id', columns: [{ name: 'hydrant_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Hydrant number' }] }],
  unstructured: [{ name: '巡检照片', format: 'JPEG', volume: '约 2 TB', grade: 'L2' }],
  procured: [{ name: '第三方管网测绘数据', supplier: '某测绘公司', contract: 'LG-WS-2024-017', grade: 'L2' }],
};
const registration = {
  id: 'reg_0c4d…',
  institution: 'water-utility',
  kind: 'system',
  name: '智慧水务管网系统',
  status: 'submitted',
  submission: 1,
  findings: [{ path: 'procured.0.contract', problem: 'needs the contract it was procured under' }],
  returnReasons: null,
  filing: null,
  content: registrationContent,
  createdAt: '2026-11-27T02:00:00.000Z',
  updatedAt: '2026-11-27T02:00:00.000Z',
};
const revision = {
  dataset: 'power_readings',
  revision: 2,
  status: 'published',
  note: '按年度复核调整共享类型',
  diff: [{ field: 'sharingType', from: 'conditional', to: 'unconditional' }, { field: 'sharingBasis', from: '含个人用电信息', to: null }],
  proposedBy: 'clerk-power-utility',
  reviewedBy: 'admin-data-centre',
  reviewReason: null,
  createdAt: '2026-11-20T02:00:00.000Z',
  decidedAt: '2026-11-27T02:00:00.000Z',
};
/** An over-scope incident, as the incident examples show it before its finding. */
const overScopeIncident = {
  id: 'inc_…',
  kind: 'over_scope',
  operatorId: 'harbour-credit',
  principalId: 'analyst-harbour-credit',
  jobId: null,
  detail: { datasets: ['power_readings'], problems: ['power_readings.kwh is not in the licence'] },
  createdAt: '2026-11-27T02:00:00.000Z',
};

const sharingRequest = {
  id: 'share_26ed329b-435a-41fe-9616-457d033de814',
  requester: 'power-utility',
  dataset: 'enterprises',
  columns: ['uscc', 'name', 'status'],
  duty: '核实用电企业登记信息（法定职责）',
  scenario: '企业用电报装审核',
  sharingType: 'unconditional',
  status: 'pending',
  dueOn: '2026-12-04',
  deadlineProvisional: false,
  overdue: false,
  answeredOn: null,
  answeredOnTime: null,
  sourceDecision: null,
  committeeDecision: null,
  refusal: null,
  createdAt: '2026-11-27T02:00:00.000Z',
};
const principal = { id: 'analyst-lingang-analytics', role: 'operator', displayName: '临港数智分析 · 分析师', operatorId: 'lingang-analytics', institutionId: null, status: 'active', statusReason: null };

const product = {
  id: 'resident-identity',
  kind: 'verification',
  title: 'Resident name and ID number match',
  titleZh: '居民姓名与身份证号一致性核验',
  status: 'published',
  operator: 'harbour-credit',
  terms: '仅用于经本人授权的实名核验；每次调用须说明用途。',
  price: { currency: 'CNY', publicInterestFen: 0, industryFen: 30, monthlyCapFen: 500000 },
  dataset: 'residents',
  inputSchema: { type: 'object', additionalProperties: false, required: ['id_number', 'name'], properties: { id_number: { type: 'string', maxLength: 18, pattern: '^(?:[0-9]{17}[0-9X])$' }, name: { type: 'string', maxLength: 50 } } },
  example: { id_number: '310115199001011232', name: '王伟' },
  subjectInputs: ['id_number'],
  claimInputs: ['name'],
  condition: null,
  modes: ['plain', 'encrypted'],
  perSubjectDailyLimit: 5,
  updatedAt: '2026-11-27T02:00:00.000Z',
};
const quotaStandingExample = {
  day: '2026-11-28',
  callsToday: 1_284,
  dailyCalls: 100_000,
  ratePerSecond: 200,
  productCallsToday: { 'power-use-estimate': 12 },
  month: '2026-11',
  feesThisMonthFen: 38_520,
  monthlyCapFen: 500_000,
  throttledUntil: null,
};
const publicInterestGrantExample = {
  consumerId: 'consumer-city-app',
  basis: '“随申办”政务服务：公共服务事项办理中的身份核验 (2026 年委员会决定)',
  grantedBy: 'regulator-data-dept',
  grantedAt: '2026-11-27T02:00:00.000Z',
  validUntil: '2027-12-31T16:00:00.000Z',
  revokedAt: null,
  inForce: true,
};
const signedAnswer = 'eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiIsInR5cCI6InBkcy1hbnN3ZXIrandzIn0.…';

export const operationExamples: Record<string, Example> = {
  'get /v1/datasets/{id}': { response: { id: 'power_readings', title: 'Monthly power readings', titleZh: '月度用电数据', grade: 'L3', openData: false, sharingType: 'conditional', privacyUnit: 'account_id', columns: [{ name: 'account_id', type: 'VARCHAR', class: 'direct_identifier' }, { name: 'kwh', type: 'DOUBLE', class: 'sensitive' }], versions: [{ versionNumber: 1, rowCount: 6211200, contentHash: '5f2c…e91a' }] } },
  'post /v1/datasets/{id}/versions': { response: { id: 'ver_…', versionNumber: 2, contentHash: '77aa…01bc', sourceHash: '4e10…9d2f', sourceFormat: 'csv', rowCount: 259800, byteSize: 9437184, catalogueVersion: 1, createdAt: '2026-11-27T02:00:00.000Z' } },
  'post /v1/jobs': { request: { datasets: ['power_readings'], sql: 'SELECT town, count(DISTINCT account_id) AS accounts, sum(kwh) AS kwh FROM power_readings GROUP BY town', purpose: '新片区能源规划（公益）' }, response: { ...job, status: 'queued', stage: 'waiting for a sandbox', code: null, startedAt: null, finishedAt: null, releasedAt: null, releaseLeafIndex: null } },
  'post /v1/products': {
    request: { id: 'enterprise-industry', title: 'Enterprise industry class match', titleZh: '企业行业类别核验', terms: '用于业务往来中的企业核验。', spec: { kind: 'verification', dataset: 'enterprises', inputs: [{ name: 'credit_code', description: 'USCC', example: '91310115MA1H7XQ08N' }, { name: 'industry', description: 'GB/T 4754 class', example: 'C3612' }], subject: [{ input: 'credit_code', column: 'uscc' }], claims: [{ input: 'industry', column: 'industry_code' }] } },
    response: { ...product, id: 'enterprise-industry', status: 'draft' },
  },
  'get /v1/products/{id}': { response: product },
  'post /v1/products/{id}/decision': { request: { decision: 'approve', reason: '已审核产品定义与条款' }, response: { ...product, status: 'approved' } },
  'post /v1/products/{id}/publication': { request: { action: 'publish' }, response: product },
  'post /v1/products/{id}/verify': { response: { match: true, jws: signedAnswer, auditLeafIndex: 1024, feeFen: 30 } },
  'get /v1/products/{id}/he-params': {
    response: { scheme: 'bfv', library: 'node-seal 6 (Microsoft SEAL 4)', polyModulusDegree: 8192, plainModulus: '1099511480321', coeffModulusBits: [43, 43, 44, 44], securityLevel: 128, parameters: 'XqEQBAEAAAA…', ciphertextBytes: 262338, publicKeyBytes: 327874, encoding: { digest: 'SHA-256', domain: 'pds-verify/v1', chunkBits: 39, chunksPerClaim: 2 }, subjectInputs: ['id_number'], claimInputs: ['name'] },
  },
  'post /v1/products/{id}/verify-encrypted': {
    request: { subject: { id_number: '310115199001011232' }, ciphertext: 'XqEQBAEAAADCAAQ…(262,338 bytes, base64)', keyId: 'hek_0b6c1f0e-5a43-4c1e-9a0e-3f5d2a1c7b21', purpose: '开户实名核验', use: 'industry' },
    response: { answer: 'XqEQBAECAAA…(zstd SEAL ciphertext, base64)', jws: signedAnswer, auditLeafIndex: 1025, feeFen: 30 },
  },
  'post /v1/he-keys': {
    request: { scheme: 'bfv', publicKey: 'XqEQBAEAAADCAAU…(327,874 bytes, base64)' },
    response: { id: 'hek_0b6c1f0e-5a43-4c1e-9a0e-3f5d2a1c7b21', scheme: 'bfv', sha256: '5f0c3c1d2e8a7b6c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e', createdAt: '2026-11-27T02:00:00.000Z' },
  },
  'get /v1/he-keys': { response: { keys: [{ id: 'hek_0b6c1f0e-5a43-4c1e-9a0e-3f5d2a1c7b21', scheme: 'bfv', sha256: '5f0c3c1d2e8a7b6c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e', createdAt: '2026-11-27T02:00:00.000Z' }] } },
  'post /v1/products/{id}/score': { request: { input: { kwh: 350, enterprise: 0 }, purpose: '电费估算', use: 'public_interest' }, response: { score: 216.4, linearPredictor: 216.4, jws: signedAnswer, auditLeafIndex: 1030, feeFen: 0 } },
  'post /v1/products/{id}/score-encrypted': {
    request: { ciphertext: 'XqEQBAEAAAD…(seeded CKKS ciphertext, base64)', publicKey: 'XqEQBAEAAAD…(seeded public key, base64)', purpose: '电费估算', use: 'public_interest' },
    response: { answer: 'XqEQBAECAAA…(zstd CKKS ciphertext, base64)', jws: signedAnswer, auditLeafIndex: 1031, feeFen: 0 },
  },
  'put /v1/consumers/{id}/public-interest': {
    request: { basis: '“随申办”政务服务：公共服务事项办理中的身份核验 (2026 年委员会决定)', validUntil: '2027-12-31T16:00:00Z' },
    response: publicInterestGrantExample,
  },
  'get /v1/consumers/{id}/public-interest': { response: publicInterestGrantExample },
  'get /v1/consumers/{id}/quota': { response: quotaStandingExample },
  'get /v1/consumers': {
    response: {
      consumers: [
        { id: 'consumer-city-app', displayName: '随申办 · 政务服务', status: 'active', publicInterest: publicInterestGrantExample, quota: quotaStandingExample },
        { id: 'consumer-east-sea-bank', displayName: '东海银行 · 接口调用方', status: 'active', publicInterest: null, quota: { ...quotaStandingExample, callsToday: 0, feesThisMonthFen: 0 } },
      ],
    },
  },
  'post /v1/consumers/{id}/public-interest/revoke': {
    request: { reason: '服务已迁移至其他平台' },
    response: { ...publicInterestGrantExample, revokedAt: '2026-12-01T02:00:00.000Z', inForce: false },
  },
  'get /v1/reports/products': { response: { year: 2026, currency: 'CNY', products: [{ product: 'resident-identity', title: product.title, titleZh: product.titleZh, operator: 'harbour-credit', status: 'published', calls: 1200, publicInterestCalls: 40, industryCalls: 1160, encryptedCalls: 75, distinctConsumers: 3, feesFen: 34800 }], totals: { calls: 1200, feesFen: 34800 } } },
  'get /healthz': { response: { status: 'ok', mode: 'dev', database: 'pglite' } },
  'get /.well-known/jwks.json': { response: { keys: [{ kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'Vu7…', alg: 'EdDSA', use: 'sig' }] } },
  'get /v1/datasets': { response: { datasets: [{ id: 'power_readings', title: 'Monthly power readings', titleZh: '月度用电数据', grade: 'L3', openData: false, sharingType: 'conditional', latestVersion: '5f2c…e91a' }] } },
  'post /v1/datasets': {
    request: { id: 'street_lights', title: 'Street lights', titleZh: '路灯设施', description: 'Street lights and their wattage', descriptionZh: '路灯及其功率', category: 'infrastructure', grade: 'L1', openData: true, sharingType: 'unconditional', legalBasis: '《临港新片区公共数据管理办法》第十条', updateFrequency: 'monthly', privacyUnit: 'light_id', uniqueKey: ['light_id'], columns: [{ name: 'light_id', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'Light id' }, { name: 'watts', type: 'INTEGER', class: 'attribute', nullable: false, description: 'Power (W)', descriptionZh: '功率（瓦）' }] },
    response: { id: 'street_lights', grade: 'L1', versions: [] },
  },
  'post /v1/operators': { request: { id: 'east-sea-analytics', name: 'East Sea Analytics Co., Ltd.', nameZh: '东海数据分析有限公司', creditCode: '91310115MA1H7XQ08N' }, response: { id: 'east-sea-analytics', name: 'East Sea Analytics Co., Ltd.', nameZh: '东海数据分析有限公司', creditCode: '91310115MA1H7XQ08N', status: 'active', statusReason: null, createdAt: '2026-11-27T02:00:00.000Z' } },
  'get /v1/operators': { response: { operators: [{ id: 'lingang-analytics', name: 'Lingang Analytics Co., Ltd.', nameZh: '临港数智分析有限公司', creditCode: '91310115MA7LG0A189', status: 'active', statusReason: null, createdAt: '2026-01-01T00:00:00.000Z' }] } },
  'get /v1/operators/{id}': { response: { id: 'lingang-analytics', name: 'Lingang Analytics Co., Ltd.', nameZh: '临港数智分析有限公司', creditCode: '91310115MA7LG0A189', status: 'active', statusReason: null, createdAt: '2026-01-01T00:00:00.000Z' } },
  'post /v1/operators/{id}/status': {
    request: { status: 'suspended', reason: '未按期提交年度安全评估报告，整改期间暂停' },
    response: { id: 'lingang-analytics', name: 'Lingang Analytics Co., Ltd.', nameZh: '临港数智分析有限公司', creditCode: '91310115MA7LG0A189', status: 'suspended', statusReason: '未按期提交年度安全评估报告，整改期间暂停', createdAt: '2026-01-01T00:00:00.000Z' },
  },
  'post /v1/operators/{id}/licences': {
    request: { title: licence.title, scope: licence.scope, purposes: licence.purposes, maxGrade: 'L3', validFrom: licence.validFrom, validUntil: licence.validUntil, feeMode: 'capped_fee' },
    response: licence,
  },
  'get /v1/licences': { response: { licences: [licence] } },
  'get /v1/licences/{id}': { response: licence },
  'post /v1/licences/{id}/status': { request: { status: 'suspended', reason: '超范围使用，整改期间暂停' }, response: { ...licence, status: 'suspended', statusReason: '超范围使用，整改期间暂停' } },
  'post /v1/principals': { request: { id: 'analyst-east-sea', role: 'operator', displayName: '东海数据 · 分析师', operatorId: 'east-sea-analytics' }, response: { ...principal, id: 'analyst-east-sea', operatorId: 'east-sea-analytics' } },
  'get /v1/me': { response: principal },
  'get /v1/principals': { response: { principals: [principal, { ...principal, id: 'analyst-left', displayName: '临港数智分析 · 前分析师', status: 'disabled', statusReason: '已离职' }] } },
  'post /v1/principals/{id}/status': { request: { status: 'disabled', reason: '令牌疑似泄露，停用并作废已签发令牌' }, response: { ...principal, status: 'disabled', statusReason: '令牌疑似泄露，停用并作废已签发令牌' } },
  'post /v1/tokens': { request: { principalId: 'analyst-lingang-analytics', ttlSeconds: 3600 }, response: { token: 'eyJhbGciOiJFZERTQSIsImtpZCI6Ii4uLiIsInR5cCI6IkpXVCJ9.…', principalId: 'analyst-lingang-analytics' } },
  'get /v1/jobs': { response: { jobs: [job] } },
  'post /v1/jobs/dry-run': {
    request: { datasets: ['power_readings'], sql: 'SELECT town, count(DISTINCT account_id) AS accounts, sum(kwh) AS kwh FROM power_readings GROUP BY town', purpose: '新片区能源规划（公益）' },
    response: { decision: 'accept', kind: 'aggregate', differentialPrivacy: null, expectedNoise: null, grade: 'L3', datasets: ['power_readings'], outputColumns: [{ name: 'town', role: 'group_key' }, { name: 'accounts', role: 'count' }, { name: 'kwh', role: 'measure' }], policy: { hash: 'c3d1…7a0b', minContributors: 20, dominance: { n: 2, k: 90 }, pPercent: 10, roundCountsTo: 5, reviewers: 1 }, analysisMilliseconds: 4.2 },
  },
  'post /v1/jobs/trial-run': {
    request: { datasets: ['power_readings', 'enterprises'], sql: 'SELECT e.industry_code, count(DISTINCT p.account_id) AS accounts FROM power_readings p JOIN enterprises e ON p.uscc = e.uscc GROUP BY e.industry_code', purpose: '产业用电结构（公益）' },
    response: { decision: 'accept', kind: 'aggregate', grade: 'L3', datasets: ['power_readings', 'enterprises'], synthetic: true, rowsPerDataset: 500, columns: [{ name: 'industry_code', type: 'VARCHAR' }, { name: 'accounts', type: 'BIGINT' }], rows: [['C3612', 9], ['I6513', 14]], rowCount: 18, milliseconds: 41 },
  },
  'post /v1/jobs/estimate': {
    request: { datasets: ['transit_trips'], sql: 'SELECT route_id, count(*) AS trips FROM transit_trips GROUP BY route_id', purpose: '公交线网优化', privacy: { differentialPrivacy: true, epsilon: 0.5 } },
    response: { allowed: true, code: null, reason: null, grade: 'L4', epsilon: 0.5, budget: { dataset: 'transit_trips', epsilonCap: 5, epsilonSpent: 1.2, epsilonRemaining: 3.8 } },
  },
  'get /v1/jobs/{id}': { response: { ...job, sql: 'SELECT town, industry_code, month, sum(kwh) AS kwh FROM power_readings GROUP BY town, industry_code, month' } },
  'get /v1/jobs/{id}/result': {
    response: { jobId: job.id, columns: [{ name: 'town', role: 'group_key' }, { name: 'accounts', role: 'count' }, { name: 'kwh', role: 'measure' }], rows: [['泥城镇', 1240, 4812233.5], ['书院镇', null, null]], manifest: { rowCount: 2, suppressedRows: [{ row: 1, code: 'BELOW_THRESHOLD', reason: 'fewer distinct contributors than the threshold of 20' }] }, receipt: 'eyJhbGciOiJFZERTQSIsInR5cCI6InBkcy1yZWNlaXB0K2p3cyJ9.…' },
  },
  'post /v1/jobs/{id}/cancel': { response: { ...job, status: 'cancelled', code: 'CANCELLED', reason: 'cancelled by the operator', releaseLeafIndex: null, releasedAt: null } },
  'get /v1/jobs/{id}/record': {
    response: { job, sql: 'SELECT town, …', plan: { kind: 'aggregate' }, internalDetail: null, manifest: { rowCount: 2 }, output: { columns: [], rows: [] }, receipt: 'eyJ…', reviews: [{ reviewer: 'regulator-data-dept', decision: 'approve', reason: '已核对', at: '2026-11-27T03:15:40.000Z' }], audit: [{ index: 410, leaf: '{…}' }] },
  },
  'get /v1/reviews': {
    response: {
      reviews: [
        { job: { ...job, status: 'in_review' }, sql: 'SELECT town, …', approvals: 0, reviewers: [], canReview: true, releaseBlocked: null },
        { job: { ...job, id: 'job_7d0c…', status: 'in_review' }, sql: 'SELECT month, …', approvals: 0, reviewers: [], canReview: true, releaseBlocked: { code: 'LICENCE_NOT_IN_FORCE', reason: 'the licence it ran under is not in force (suspended, revoked or expired)' } },
      ],
    },
  },
  'post /v1/reviews/{job}': { request: { decision: 'approve', reason: '已核对输出与披露控制记录' }, response: job },
  'get /v1/audit/checkpoint': { response: { tree_size: 413, root_hash: '3f9a…c01d', timestamp: '2026-11-27T03:15:41.000Z', jws: 'eyJhbGciOiJFZERTQSJ9.…' } },
  'get /v1/audit/checkpoints': { response: { checkpoints: [{ tree_size: 413, root_hash: '3f9a…c01d', timestamp: '2026-11-27T03:15:41.000Z', jws: 'eyJhbGciOiJFZERTQSJ9.…' }] } },
  'get /v1/audit/entries': { response: { entries: [{ index: 412, leaf: '{"actor":"regulator-data-dept","at":"2026-11-27T03:15:40.000Z","index":412,"job":"job_7d1c…","type":"job.released"}', event: { type: 'job.released', actor: 'regulator-data-dept', job: 'job_7d1c…' } }] } },
  'get /v1/audit/proofs/inclusion': { response: { leaf_index: 412, tree_size: 413, leaf_hash: '8c1e…', inclusion_path: ['a0f3…', '77b2…'] } },
  'get /v1/audit/proofs/consistency': { response: { first: 400, second: 413, consistency_path: ['5d9e…', 'c2a8…'] } },
  'get /v1/budgets': { response: { budgets: [budget] } },
  'post /v1/budgets': { request: { licenceId: licence.id, datasetId: 'transit_trips', epsilonCap: 5, reason: '年度隐私预算（监管决定）' }, response: budget },
  'post /v1/budgets/{id}/reset': { request: { reason: '年度预算重置（监管决定）' }, response: { ...budget, epsilonSpent: 0, epsilonRemaining: 5 } },
  'get /v1/products': { response: { products: [{ id: 'resident-identity', kind: 'verification', titleZh: '居民姓名与身份证号一致性核验', status: 'published', inputSchema: { type: 'object', required: ['id_number', 'name'] }, example: { id_number: '310115199001011232', name: '王伟' }, price: { currency: 'CNY', publicInterestFen: 0, industryFen: 30, monthlyCapFen: 500000 } }] } },
  'post /v1/subject-access': {
    request: { product: 'resident-identity', input: { id_number: '310115199001011232' }, reference: 'SAR-2026-0042' },
    response: {
      reference: 'SAR-2026-0042',
      total: 1,
      auditIndex: 5120,
      checks: [{ product: 'resident-identity', productTitle: 'Resident name and ID number match', productTitleZh: '居民姓名与身份证号一致性核验', consumer: 'consumer-east-sea-bank', consumerName: '东海银行 · 接口调用方', calledAt: '2026-11-27T01:20:00.000Z', use: 'industry', purpose: '开户实名核验', mode: 'plain', auditIndex: 4987 }],
    },
  },
  'get /v1/usage': { response: { from: '2026-10-28T02:00:00.000Z', to: '2026-11-27T02:00:00.000Z', usage: [{ product: 'resident-identity', mode: 'plain', use: 'industry', calls: 1200, feesFen: 36000, firstCall: '2026-11-01T01:00:00.000Z', lastCall: '2026-11-27T01:59:00.000Z' }], totals: { calls: 1200, feesFen: 36000 } } },
  'get /v1/incidents': {
    response: {
      incidents: [
        { id: 'inc_…', kind: 'probing', operatorId: null, principalId: 'consumer-east-sea-bank', jobId: null, detail: { window: 100, distinctSubjects: 97, matchRate: 0.01, product: 'resident-identity' }, createdAt: '2026-11-27T02:00:00.000Z', resolution: null },
      ],
    },
  },
  'post /v1/incidents/{id}/resolution': {
    response: {
      ...overScopeIncident,
      resolution: { outcome: 'operator_warned', reason: '已约谈运营机构，确认为误选数据集，要求整改', resolvedBy: 'regulator-data-dept', resolvedAt: '2026-11-28T01:30:00.000Z', earlierFindings: [] },
    },
  },
  'post /v1/incidents/{id}/resolution/correction': {
    response: {
      ...overScopeIncident,
      resolution: {
        outcome: 'licence_action',
        reason: '复查发现同类越权多次发生，说明不实，已暂停许可',
        resolvedBy: 'regulator-second-reviewer',
        resolvedAt: '2026-12-02T03:00:00.000Z',
        earlierFindings: [
          { outcome: 'operator_warned', reason: '已约谈运营机构，确认为误选数据集，要求整改', resolvedBy: 'regulator-data-dept', resolvedAt: '2026-11-28T01:30:00.000Z', correctedBy: 'regulator-second-reviewer', correctedAt: '2026-12-02T03:00:00.000Z' },
        ],
      },
    },
  },
  'post /v1/sharing-requests': { request: { dataset: 'enterprises', columns: ['uscc', 'name', 'status'], duty: sharingRequest.duty, scenario: sharingRequest.scenario }, response: sharingRequest },
  'get /v1/sharing-requests': { response: { requests: [sharingRequest] } },
  'post /v1/sharing-requests/{id}/decision': { request: { decision: 'refuse', reason: '申请范围超出履职需要', legalBasis: '《临港新片区公共数据管理办法》第十六条' }, response: { ...sharingRequest, status: 'refused', sourceDecision: 'refuse', answeredOn: '2026-11-30', answeredOnTime: true, refusal: { reason: '申请范围超出履职需要', legalBasis: '《临港新片区公共数据管理办法》第十六条' } } },
  'post /v1/open-data-demands': { request: { subject: '各镇分行业月度用电量（汇总）', scenario: '园区招商选址分析，需各镇各行业的用电规模', dataset: 'power_readings' }, response: { id: 'odd_4f2a…', subject: '各镇分行业月度用电量（汇总）', scenario: '园区招商选址分析，需各镇各行业的用电规模', dataset: 'power_readings', demandsForDataset: 3, status: 'open', answer: null, metBy: null, mine: true, requestedBy: 'analyst-lingang-analytics', answeredAt: null, createdAt: '2026-11-27T02:00:00.000Z' } },
  'get /v1/open-data-demands': { response: { demands: [{ id: 'odd_4f2a…', subject: '各镇分行业月度用电量（汇总）', scenario: '园区招商选址分析，需各镇各行业的用电规模', dataset: 'power_readings', demandsForDataset: 3, status: 'open', answer: null, metBy: null, mine: true, requestedBy: 'analyst-lingang-analytics', answeredAt: null, createdAt: '2026-11-27T02:00:00.000Z' }] } },
  'post /v1/open-data-demands/{id}/answer': { request: { outcome: 'met', dataset: 'power_by_town_industry', answer: '已由已发布的聚合结果整理为高质量数据集开放' }, response: { ...{ id: 'odd_4f2a…', subject: '各镇分行业月度用电量（汇总）', scenario: '园区招商选址分析，需各镇各行业的用电规模', dataset: 'power_readings', demandsForDataset: 3, status: 'open', answer: null, metBy: null, mine: true, requestedBy: 'analyst-lingang-analytics', answeredAt: null, createdAt: '2026-11-27T02:00:00.000Z' }, status: 'met', answer: '已由已发布的聚合结果整理为高质量数据集开放', metBy: 'power_by_town_industry', answeredAt: '2026-11-28T02:00:00.000Z' } },
  'get /v1/datasets/{id}/uses': {
    response: {
      dataset: 'power_readings',
      institution: 'power-utility',
      from: '2026-10-28T02:00:00.000Z',
      to: '2026-11-27T02:00:00.000Z',
      jobs: [{ job: 'job_7d1c…', operator: 'lingang-analytics', operatorName: 'Lingang Analytics Co.', operatorNameZh: '临港数据分析有限公司', kind: 'aggregate', purpose: '各镇分行业月度用电统计', status: 'released', code: 'CHECKED_WITH_SUPPRESSION', submittedAt: '2026-11-20T02:00:00.000Z', auditIndexes: [402, 412] }],
      jobsTruncated: false,
      products: [{ product: 'enterprise-power-payment', title: 'Enterprise paid its power bills on time', titleZh: '企业近12个月按时缴纳电费核验', kind: 'verification', operator: 'harbour-credit', status: 'published', calls: 1200, publicInterestCalls: 200, industryCalls: 1000, firstCall: '2026-11-01T01:00:00.000Z', lastCall: '2026-11-27T01:59:00.000Z', firstAuditIndex: 230, lastAuditIndex: 1840 }],
      channelPulls: [{ at: '2026-11-21T03:00:00.000Z', recipient: 'market-regulator', recipientName: 'Market Regulation Bureau', recipientNameZh: '市场监督管理局', channel: 3, version: 4, rows: 12000, columns: ['uscc', 'month', 'kwh'], auditIndex: 455 }],
      externalDeliveries: [],
      derivedDatasets: [],
      incidents: [{ at: '2026-11-22T06:00:00.000Z', kind: 'over_scope', operator: 'harbour-credit', job: null, outcome: 'operator_warned', auditIndex: 470 }],
      totals: { jobs: 1, jobsReleased: 1, productCalls: 1200, channelPulls: 1, rowsPulled: 12000, externalDeliveries: 0, rowsDelivered: 0, derivedDatasets: 0, incidents: 1 },
    },
  },
  'get /v1/datasets/{id}/quality': {
    response: {
      dataset: 'enterprises',
      checks: [
        {
          dataset: 'enterprises',
          version: 2,
          score: 99.6,
          passed: false,
          rules: [
            { rule: 'credit_code', label: 'credit_code(uscc)', status: 'passed', checked: 12000, violations: 0 },
            { rule: 'resident_id', label: 'resident_id(legal_rep_id)', status: 'failed', checked: 12000, violations: 80 },
            { rule: 'unique', label: 'unique(name)', status: 'failed', checked: 12000, violations: 60 },
          ],
          checkedAt: '2026-11-27T02:00:00.000Z',
        },
      ],
    },
  },
  'get /v1/quality-flags': { response: { flags: [{ dataset: 'enterprises', version: 2, score: 99.6, passed: false, rules: [{ rule: 'unique', label: 'unique(name)', status: 'failed', checked: 12000, violations: 60 }], checkedAt: '2026-11-27T02:00:00.000Z' }] } },
  'get /v1/channels': { response: { channels: [channel] } },
  'get /v1/channels/{id}/data': { response: 'uscc,name,status\n91310115MA1K4XXXX0,上海临港智造新能源汽车有限公司,active\n' },
  'post /v1/channels/{id}/status': { request: { action: 'reactivate', reason: '供电公司说明了恢复使用的需要' }, response: { ...channel, statusReason: '供电公司说明了恢复使用的需要' } },
  'post /v1/datasets/{id}/sharing-evaluations': {
    request: { outcome: 'keep_conditional', reason: '《电力法》规定的用户信息保护仍然适用' },
    response: { id: 'sev_2b8e4c1a-0f7d-4c52-9a51-3d2f6e7a9b10', dataset: 'power_readings', outcome: 'keep_conditional', reason: '《电力法》规定的用户信息保护仍然适用', revision: null, evaluatedBy: 'admin-data-centre', evaluatedAt: '2026-11-28T02:00:00.000Z' },
  },
  'get /v1/sharing-evaluations': {
    response: {
      datasets: [
        { dataset: 'power_readings', title: '电力抄表数据', institution: 'power-utility', sharingBasis: '《电力法》及供用电合同的用户信息保护条款', since: '2025-11-20T02:00:00.000Z', dueOn: '2026-11-20', overdue: true, lastEvaluation: null },
      ],
    },
  },
  'post /v1/external-requests': { request: externalRequestContent, response: externalRequest },
  'get /v1/external-requests': { response: { requests: [{ ...externalRequest, status: 'delivered', decidedBy: 'regulator-second', decidedAt: '2026-11-29T03:00:00.000Z', deliveries: [externalDelivery] }] } },
  'post /v1/external-requests/{id}/decision': { request: { decision: 'approve' }, response: { ...externalRequest, status: 'approved', decidedBy: 'regulator-second', decidedAt: '2026-11-29T03:00:00.000Z' } },
  'get /v1/external-requests/{id}/data': { response: 'uscc,industry_code,status\n91310115MA1K4XXXX0,C3612,active\n' },
  'get /v1/backups': {
    response: {
      backups: [
        { kind: 'backup', at: '2026-11-28T02:00:01.000Z', actor: 'admin-data-centre', auditIndex: 4810, createdAt: '2026-11-28T02:00:00.000Z', tables: 26, rows: 48210, snapshots: 9, bytes: 123514880, folder: 'pds-20261128T020000Z-3f9a1c', manifestSha256: '9c1f0e4b7a2d5c8e3f6a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b8c9d0e' },
      ],
    },
  },
  'post /v1/derived-datasets': { request: derivedContent, response: derivedProposal },
  'get /v1/derived-datasets': { response: { proposals: [{ ...derivedProposal, status: 'published', decidedBy: 'regulator-data-dept', decidedAt: '2026-11-29T03:00:00.000Z' }] } },
  'post /v1/derived-datasets/{id}/decision': { request: { decision: 'publish' }, response: { ...derivedProposal, status: 'published', decidedBy: 'regulator-data-dept', decidedAt: '2026-11-29T03:00:00.000Z' } },
  'post /v1/backups': { response: { folder: 'pds-20261128T020000Z-3f9a1c', createdAt: '2026-11-28T02:00:00.000Z', tables: 26, rows: 48210, snapshots: 9, bytes: 123514880 } },
  'post /v1/disputes': { request: { dataset: 'enterprises', column: 'name', recordReference: '户号 1002003', description: '企业名称与营业执照不一致' }, response: dispute },
  'get /v1/disputes': { response: { disputes: [dispute] } },
  'post /v1/disputes/{id}/answer': { request: { outcome: 'corrected', version: 3, answer: '已按营业执照更正企业名称' }, response: { ...dispute, status: 'corrected', answer: '已按营业执照更正企业名称', answeredOn: '2026-11-30', answeredOnTime: true } },
  'post /v1/registrations': { request: registrationContent, response: registration },
  'put /v1/registrations/{id}': { request: registrationContent, response: { ...registration, submission: 2 } },
  'get /v1/registrations': { response: { registrations: [registration] } },
  'post /v1/registrations/{id}/review': { request: { decision: 'approve' }, response: { ...registration, status: 'filed', filing: { number: 'LG-DR-2026-00001', filedAt: '2026-11-27T02:00:00.000Z', with: 'lingang-committee' } } },
  'get /v1/datasets/{id}/revisions': { response: { dataset: 'power_readings', revisions: [{ ...revision, revision: 1, note: 'registration', diff: [{ field: 'grade', from: null, to: 'L3' }] }, revision] } },
  'get /v1/catalogue-revisions': {
    response: { revisions: [{ ...revision, status: 'proposed', reviewedBy: null, decidedAt: null, datasetTitle: 'Monthly power readings', datasetTitleZh: '月度用电数据', institution: 'power-utility' }] },
  },
  'post /v1/datasets/{id}/revisions': { request: { note: '按年度复核调整共享类型', changes: { sharingType: 'unconditional', sharingBasis: null } }, response: { ...revision, status: 'proposed', reviewedBy: null, decidedAt: null } },
  'post /v1/datasets/{id}/revisions/{revision}/review': { request: { decision: 'publish' }, response: revision },
  'get /v1/reports/supervision': {
    response: { from: '2025-12-31T16:00:00.000Z', to: '2026-11-27T02:00:00.000Z', asOf: '2026-11-27T02:00:00.000Z', institutions: [{ institution: 'market-regulator', name: 'Market Supervision Administration (Lingang)', nameZh: '市场监督管理局（临港）', datasetsRegistered: 1, datasetsWithoutFiling: 0, datasetsWithData: 1, catalogueCompleteness: 1, datasetsStale: 0, qualityScore: 99.6, qualityFailing: 1, sharingReceived: 12, sharingAnsweredOnTime: 10, sharingAnsweredLate: 1, sharingOverdue: 1, sharingRefused: 2, refusalsWithoutLegalBasis: 0, sharingRequested: 3, disputesReceived: 2, disputesHandledOnTime: 1, disputesHandledLate: 0, disputesOverdue: 1, incidentsOnItsData: 0, externalDeliveriesOfItsData: 1 }] },
  },
};

/** Adds the examples above to a generated OpenAPI document, where its routes carry none of their own. */
export function withExamples(document: { paths?: Record<string, Record<string, any>> }): typeof document {
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      const example = operationExamples[`${method} ${path}`];
      if (!example) continue;
      const requestContent = operation.requestBody?.content?.['application/json'];
      if (requestContent && example.request !== undefined && requestContent.example === undefined) requestContent.example = example.request;
      const success = Object.entries(operation.responses ?? {}).find(([status]) => status.startsWith('2'))?.[1] as { content?: Record<string, { example?: unknown }> } | undefined;
      // JSON where the answer has it, else its only form (CSV, for instance).
      const responseContent = success?.content?.['application/json'] ?? Object.values(success?.content ?? {})[0];
      if (responseContent && responseContent.example === undefined) responseContent.example = example.response;
    }
  }
  return document;
}
