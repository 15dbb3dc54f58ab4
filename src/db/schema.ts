import { bigint, boolean, customType, doublePrecision, index, integer, jsonb, pgTable, primaryKey, text, timestamp, uniqueIndex } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import type { ColumnSpec } from '../catalog/columns.js';
import type { LicenceScopeEntry } from '../licensing/licence-scope.js';
import type { ProductSpec } from '../products/product-spec.js';
import type { QualityRule, QualityRuleResult } from '../catalog/quality-rules.js';

/** Public bodies (公共管理和服务机构), the data centre and the supervising committee. */
export const institutions = pgTable('institutions', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  nameZh: text('name_zh').notNull(),
  kind: text('kind', { enum: ['public_body', 'utility', 'data_centre', 'committee'] }).notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Licensed operators (被授权运营主体): legal persons that hold licences. */
export const operators = pgTable('operators', {
  id: text('id').primaryKey(),
  name: text('name').notNull(),
  nameZh: text('name_zh'),
  creditCode: text('credit_code'),
  status: text('status', { enum: ['active', 'suspended', 'revoked'] }).notNull().default('active'),
  /** The regulator's reason for the last status change (the audit log keeps every one). */
  statusReason: text('status_reason'),
  createdBy: text('created_by'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
});

/** Anyone who can hold a token. An operator user belongs to an operator; an institution user to an institution. */
/** Who an account is: the roles Cedar's policies name (policies/authz.cedarschema), one list for the table and the API. */
export const principalRoles = ['operator', 'regulator', 'institution', 'consumer', 'admin', 'assessor'] as const;

export const principals = pgTable(
  'principals',
  {
    id: text('id').primaryKey(),
    role: text('role', { enum: principalRoles }).notNull(),
    displayName: text('display_name').notNull(),
    operatorId: text('operator_id').references(() => operators.id),
    institutionId: text('institution_id').references(() => institutions.id),
    status: text('status', { enum: ['active', 'disabled'] }).notNull().default('active'),
    statusReason: text('status_reason'),
    /** Tokens issued before this instant are refused, even after the account is enabled again (set on disabling). */
    tokensNotBefore: timestamp('tokens_not_before', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index('principals_operator_idx').on(table.operatorId)],
);

/**
 * A consumer's standing to call products for public-interest use (free under policies/pricing.yaml), granted by
 * a regulator with its basis and an end date. Without one, a call that says "public_interest" is refused: the
 * use a caller claims sets its fee, so it cannot be the caller's word alone.
 */
export const publicInterestGrants = pgTable('public_interest_grants', {
  consumerId: text('consumer_id')
    .primaryKey()
    .references(() => principals.id),
  basis: text('basis').notNull(),
  grantedBy: text('granted_by').notNull(),
  grantedAt: timestamp('granted_at', { withTimezone: true }).notNull(),
  validUntil: timestamp('valid_until', { withTimezone: true }).notNull(),
  revokedAt: timestamp('revoked_at', { withTimezone: true }),
});

/** A catalogue entry (数据目录): metadata only. Raw data lives in the domain store, never here. */
export const datasets = pgTable('datasets', {
  id: text('id').primaryKey(),
  title: text('title').notNull(),
  titleZh: text('title_zh').notNull(),
  description: text('description').notNull(),
  /** The description in Chinese, shown by the Chinese console; entries registered before it have none. */
  descriptionZh: text('description_zh'),
  institutionId: text('institution_id')
    .notNull()
    .references(() => institutions.id),
  category: text('category').notNull(),
  grade: text('grade', { enum: ['L1', 'L2', 'L3', 'L4', 'important', 'core'] }).notNull(),
  openData: boolean('open_data').notNull().default(false),
  sharingType: text('sharing_type', { enum: ['unconditional', 'conditional', 'none'] }).notNull(),
  sharingBasis: text('sharing_basis'),
  legalBasis: text('legal_basis').notNull(),
  updateFrequency: text('update_frequency', {
    enum: ['daily', 'weekly', 'monthly', 'quarterly', 'yearly', 'static'],
  }).notNull(),
  privacyUnit: text('privacy_unit').notNull(),
  /** Columns that identify a row (checked at every load); lets the sandbox skip per-contributor work it can prove unneeded. */
  uniqueKey: jsonb('unique_key').$type<string[]>(),
  columns: jsonb('columns').$type<ColumnSpec[]>().notNull(),
  /** Quality rules run inside DuckDB on every new version (arts. 9, 12). */
  qualityRules: jsonb('quality_rules').$type<QualityRule[]>().notNull().default([]),
  catalogueVersion: integer('catalogue_version').notNull().default(1),
  registeredBy: text('registered_by'),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** One immutable snapshot of a dataset in the domain store, named by the SHA-256 of its snapshot file. */
export const datasetVersions = pgTable(
  'dataset_versions',
  {
    id: text('id').primaryKey(),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    versionNumber: integer('version_number').notNull(),
    contentHash: text('content_hash').notNull(),
    sourceHash: text('source_hash').notNull(),
    sourceFormat: text('source_format', { enum: ['csv', 'parquet'] }).notNull(),
    rowCount: bigint('row_count', { mode: 'number' }).notNull(),
    byteSize: bigint('byte_size', { mode: 'number' }).notNull(),
    catalogueVersion: integer('catalogue_version').notNull(),
    loadedBy: text('loaded_by'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex('dataset_versions_number_idx').on(table.datasetId, table.versionNumber),
    uniqueIndex('dataset_versions_source_idx').on(table.datasetId, table.sourceHash),
  ],
);

/**
 * One row counting changes to the catalogue (datasets and their versions), bumped by statement triggers
 * (migration 0010), so that a process holding the analysis catalogue in memory checks it is current with a
 * single primary-key read instead of aggregating both tables on every job.
 */
export const catalogueGeneration = pgTable('catalogue_generation', {
  id: integer('id').primaryKey(),
  generation: bigint('generation', { mode: 'number' }).notNull(),
});

/** A licence (授权) from the committee to an operator: what data, for which purposes, until when. */
export const licences = pgTable(
  'licences',
  {
    id: text('id').primaryKey(),
    operatorId: text('operator_id')
      .notNull()
      .references(() => operators.id),
    title: text('title').notNull(),
    scope: jsonb('scope').$type<LicenceScopeEntry[]>().notNull(),
    purposes: jsonb('purposes').$type<Array<'public_interest' | 'industry'>>().notNull(),
    maxGrade: text('max_grade', { enum: ['L1', 'L2', 'L3', 'L4', 'important'] }).notNull(),
    validFrom: timestamp('valid_from', { withTimezone: true }).notNull(),
    validUntil: timestamp('valid_until', { withTimezone: true }).notNull(),
    feeMode: text('fee_mode', { enum: ['free', 'capped_fee'] }).notNull(),
    status: text('status', { enum: ['active', 'suspended', 'revoked'] }).notNull().default('active'),
    statusReason: text('status_reason'),
    createdBy: text('created_by').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    /** The granting regulator's Idempotency-Key, and the hash of the grant (operator and body) it was first sent with. */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
  },
  (table) => [index('licences_operator_idx').on(table.operatorId), uniqueIndex('licences_idempotency_idx').on(table.createdBy, table.idempotencyKey)],
);

/**
 * An analysis job (DESIGN section 2). `statusCode`/`statusReason` are what the operator may see;
 * `internalDetail` (DuckDB's own error text, which can quote data values) is for regulators only.
 */
export const jobs = pgTable(
  'jobs',
  {
    id: text('id').primaryKey(),
    operatorId: text('operator_id')
      .notNull()
      .references(() => operators.id),
    submittedBy: text('submitted_by')
      .notNull()
      .references(() => principals.id),
    licenceId: text('licence_id').references(() => licences.id),
    datasets: jsonb('datasets').$type<string[]>().notNull(),
    /** The snapshot each dataset was pinned to at submission: dataset id → content hash. */
    datasetVersions: jsonb('dataset_versions').$type<Record<string, string>>().notNull(),
    /**
     * The catalogue entry each dataset was analysed under: dataset id → hash of what analysis reads of it
     * (catalog/analysis-catalogue.ts). Null for jobs accepted before it was recorded (migration 0027).
     */
    catalogueEntries: jsonb('catalogue_entries').$type<Record<string, string>>(),
    sql: text('sql').notNull(),
    sqlHash: text('sql_hash').notNull(),
    /** The SQL's shape: its syntax tree with every constant blanked (prepare-job.ts, `shapeOf`); null when it did not parse. */
    sqlShape: text('sql_shape'),
    /** The submitter's Idempotency-Key, and the hash of the submission it was first sent with. */
    idempotencyKey: text('idempotency_key'),
    requestHash: text('request_hash'),
    purpose: text('purpose').notNull(),
    kind: text('kind', { enum: ['aggregate', 'row_level', 'model'] }),
    grade: text('grade', { enum: ['L1', 'L2', 'L3', 'L4', 'important', 'core'] }),
    policyHash: text('policy_hash').notNull(),
    /** The control state (docs/jobs.md); `statusCode` carries the detailed reason. */
    status: text('status', { enum: ['rejected', 'queued', 'running', 'failed', 'checked', 'in_review', 'released', 'withheld', 'cancelled'] }).notNull(),
    stage: text('stage'),
    statusCode: text('status_code'),
    statusReason: text('status_reason'),
    internalDetail: text('internal_detail'),
    plan: jsonb('plan'),
    output: jsonb('output'),
    manifest: jsonb('manifest'),
    attempts: integer('attempts').notNull().default(0),
    reviewersRequired: integer('reviewers_required').notNull().default(0),
    receipt: text('receipt'),
    releaseLeafIndex: bigint('release_leaf_index', { mode: 'number' }),
    releasedAt: timestamp('released_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (table) => [
    index('jobs_operator_idx').on(table.operatorId, table.createdAt),
    index('jobs_operator_shape_idx').on(table.operatorId, table.sqlShape, table.createdAt),
    uniqueIndex('jobs_idempotency_idx').on(table.submittedBy, table.idempotencyKey),
  ],
);

/** A finding on an incident that a later one corrected (incidents.earlier_findings). */
export type EarlierFinding = { outcome: 'no_action' | 'operator_warned' | 'licence_action' | 'referred'; reason: string; resolvedBy: string; resolvedAt: string; correctedBy: string; correctedAt: string };

/** Something regulators must look at: an operator reaching beyond its licence, probing, misuse. */
export const incidents = pgTable(
  'incidents',
  {
    id: text('id').primaryKey(),
    kind: text('kind', { enum: ['over_scope', 'probing', 'enumeration', 'channel_over_scope', 'channel_volume', 'sharing_overdue', 'dispute_overdue', 'sharing_evaluation_overdue', 'differencing'] }).notNull(),
    operatorId: text('operator_id').references(() => operators.id),
    principalId: text('principal_id').references(() => principals.id),
    jobId: text('job_id'),
    detail: jsonb('detail').$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    /**
     * A regulator's finding, once it has looked into the incident (src/governance/incidents.ts, `resolveIncident`): what was
     * done and why. Null while the incident is open. The audit log keeps each resolution as `incident.resolved`.
     */
    outcome: text('outcome', { enum: ['no_action', 'operator_warned', 'licence_action', 'referred'] }),
    outcomeReason: text('outcome_reason'),
    resolvedBy: text('resolved_by').references(() => principals.id),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    /**
     * Findings a regulator later corrected (`correctIncidentFinding`), oldest first: each as it stood, with who
     * recorded it and when. The columns above hold the finding in force; the audit log keeps every one.
     */
    earlierFindings: jsonb('earlier_findings').$type<EarlierFinding[]>().notNull().default([]),
  },
  (table) => [index('incidents_created_idx').on(table.createdAt)],
);

/**
 * The audit log's leaves (RFC 9162 over RFC 8785 canonical JSON). `leaf` is the exact text that was hashed.
 * Append-only: the application never updates or deletes a row; indexes are dense from 0.
 */
export const auditLeaves = pgTable(
  'audit_leaves',
  {
    leafIndex: bigint('leaf_index', { mode: 'number' }).primaryKey(),
    leafHash: text('leaf_hash').notNull(),
    leaf: text('leaf').notNull(),
    eventType: text('event_type').notNull(),
    operatorId: text('operator_id'),
    jobId: text('job_id'),
    datasets: jsonb('datasets').$type<string[]>(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [
    index('audit_leaves_type_idx').on(table.eventType, table.leafIndex),
    index('audit_leaves_operator_idx').on(table.operatorId, table.leafIndex),
    index('audit_leaves_job_idx').on(table.jobId),
  ],
);

/** Signed checkpoints (tree size, root, time), kept so a regulator can ask for consistency between any two. */
export const auditCheckpoints = pgTable('audit_checkpoints', {
  treeSize: bigint('tree_size', { mode: 'number' }).primaryKey(),
  rootHash: text('root_hash').notNull(),
  timestamp: text('timestamp').notNull(),
  jws: text('jws').notNull(),
});

/** A reviewer's decision on a held output. One per reviewer and job. */
export const reviews = pgTable(
  'reviews',
  {
    id: text('id').primaryKey(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    reviewerId: text('reviewer_id')
      .notNull()
      .references(() => principals.id),
    decision: text('decision', { enum: ['approve', 'withhold'] }).notNull(),
    reason: text('reason').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [uniqueIndex('reviews_job_reviewer_idx').on(table.jobId, table.reviewerId)],
);

/**
 * A privacy budget per licence and dataset. ε in micro-units (1 ε = 1,000,000), δ in pico-units, as integers:
 * sums of small decimals must not drift, and the conditional UPDATE that reserves budget compares exact values.
 */
export const privacyBudgets = pgTable(
  'privacy_budgets',
  {
    id: text('id').primaryKey(),
    licenceId: text('licence_id')
      .notNull()
      .references(() => licences.id),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    epsilonCapMicro: bigint('epsilon_cap_micro', { mode: 'number' }).notNull(),
    epsilonSpentMicro: bigint('epsilon_spent_micro', { mode: 'number' }).notNull().default(0),
    deltaCapPico: bigint('delta_cap_pico', { mode: 'number' }).notNull().default(0),
    deltaSpentPico: bigint('delta_spent_pico', { mode: 'number' }).notNull().default(0),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [uniqueIndex('privacy_budgets_licence_dataset_idx').on(table.licenceId, table.datasetId)],
);

/** One job's draw on a budget: reserved before it runs, then charged (its own failures too) or refunded. */
export const budgetCharges = pgTable(
  'budget_charges',
  {
    id: text('id').primaryKey(),
    budgetId: text('budget_id')
      .notNull()
      .references(() => privacyBudgets.id),
    jobId: text('job_id').notNull(),
    epsilonMicro: bigint('epsilon_micro', { mode: 'number' }).notNull(),
    deltaPico: bigint('delta_pico', { mode: 'number' }).notNull(),
    state: text('state', { enum: ['reserved', 'charged', 'refunded'] }).notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [uniqueIndex('budget_charges_job_budget_idx').on(table.jobId, table.budgetId)],
);

/**
 * Output cells of threshold-protected jobs with a sketch of their contributors, for the differencing guard.
 * `lineage` names the protected dataset whose units were sketched; cells of released jobs and of jobs awaiting
 * review are compared (withheld, cancelled and failed jobs are not).
 */
export const releasedCells = pgTable(
  'released_cells',
  {
    id: text('id').primaryKey(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    lineage: text('lineage').notNull(),
    /** Sketches compare only within one layout and size (contributor-sketch.ts); the column keeps its first name. */
    layout: text('layout').notNull(),
    buckets: integer('sub_table_size').notNull(),
    /** The cell's contributors rounded down to a band (CONTRIBUTOR_BAND): the exact count is in the sealed sketch. */
    contributors: integer('contributors').notNull(),
    sketch: text('sketch').notNull(),
  },
  (table) => [index('released_cells_lookup_idx').on(table.lineage, table.layout, table.buckets, table.contributors)],
);

/**
 * Products (measures ch. 4): a verification product answers yes/no about one subject; a scoring product serves a
 * released model. `spec` is the definition the operator submitted, checked by the job analyser; a regulator
 * approves it before its owner can publish it.
 */
export const products = pgTable(
  'products',
  {
    id: text('id').primaryKey(),
    operatorId: text('operator_id')
      .notNull()
      .references(() => operators.id),
    kind: text('kind', { enum: ['verification', 'scoring'] }).notNull(),
    title: text('title').notNull(),
    titleZh: text('title_zh').notNull(),
    /** Terms of use shown to consumers. */
    terms: text('terms').notNull(),
    spec: jsonb('spec').$type<ProductSpec>().notNull(),
    /**
     * A verification product's dataset → hash of what analysis reads of its catalogue entry, as its definition was
     * last checked (defined, approved, reinstated); it answers only while the entry is still that. Null for scoring
     * products (their model was checked when it ran) and for products approved before migration 0028.
     */
    catalogueEntries: jsonb('catalogue_entries').$type<Record<string, string>>(),
    status: text('status', { enum: ['draft', 'approved', 'published', 'suspended', 'retired'] }).notNull(),
    createdBy: text('created_by').notNull(),
    decidedBy: text('decided_by'),
    decisionReason: text('decision_reason'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('products_operator_idx').on(table.operatorId)],
);

/**
 * One row per product call, written with the call's audit leaf (metering, quotas and the annual disclosure
 * report read it). The subject is a keyed hash, never the identifier a consumer sent; the answer is kept only
 * for plain calls (the server never learns an encrypted call's answer).
 */
export const productCalls = pgTable(
  'product_calls',
  {
    id: text('id').primaryKey(),
    productId: text('product_id')
      .notNull()
      .references(() => products.id),
    consumerId: text('consumer_id')
      .notNull()
      .references(() => principals.id),
    mode: text('mode', { enum: ['plain', 'encrypted', 'score', 'score_encrypted'] }).notNull(),
    use: text('use', { enum: ['public_interest', 'industry'] }).notNull(),
    purpose: text('purpose').notNull(),
    subjectHash: text('subject_hash').notNull(),
    match: boolean('match'),
    feeFen: integer('fee_fen').notNull(),
    requestHash: text('request_hash').notNull(),
    auditIndex: bigint('audit_index', { mode: 'number' }).notNull(),
    calledAt: timestamp('called_at', { withTimezone: true }).notNull(),
  },
  (table) => [
    index('product_calls_consumer_idx').on(table.consumerId, table.calledAt),
    index('product_calls_subject_idx').on(table.subjectHash, table.calledAt),
    index('product_calls_product_idx').on(table.productId, table.calledAt),
  ],
);

/**
 * A consumer's product-call counts, shared by every API process so that its limits hold however many `pds serve`
 * processes answer calls: its calls on `day` (in all, and per scoring product), its fees in `month` (China time),
 * and until when it is throttled after probing. Counts of an earlier day or month are no longer in force: the
 * next call starts them again. Read and rewritten by the call ledger under the audit log's lock
 * (src/products/shared-quotas.ts); a subject's checks are counted from `product_calls` instead.
 */
export const consumerQuotas = pgTable('consumer_quotas', {
  consumerId: text('consumer_id')
    .primaryKey()
    .references(() => principals.id),
  day: text('day').notNull(),
  callsToday: integer('calls_today').notNull(),
  productCallsToday: jsonb('product_calls_today').$type<Record<string, number>>().notNull(),
  month: text('month').notNull(),
  feesThisMonthFen: bigint('fees_this_month_fen', { mode: 'number' }).notNull(),
  throttledUntil: timestamp('throttled_until', { withTimezone: true }),
});

/** Binary data (an encrypted answer kept for retries): as bytea it is stored as it is, not twice its size in text. */
const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({ dataType: () => 'bytea' });

/**
 * Answers to product calls sent with an Idempotency-Key, kept for a day so that a retry reaching any API process,
 * or this one after a restart, gets the first answer again instead of being charged and counted as a new call
 * (src/products/call-replays.ts). Key and request are keyed hashes; `sealed` holds what re-signs the answer
 * (its payload without the leaf index, and the response's other fields), AES-GCM-encrypted under a key derived
 * from the platform key, since it carries the request hash's salt and the answer. Written and read by the call
 * ledger under the audit log's lock; rows past `expiresAt` are deleted by the governance sweep.
 */
export const callReplays = pgTable(
  'call_replays',
  {
    consumerId: text('consumer_id')
      .notNull()
      .references(() => principals.id),
    keyHash: text('key_hash').notNull(),
    requestHash: text('request_hash').notNull(),
    /** The product call first answered (no foreign key: both rows are written by one statement). */
    callId: text('call_id').notNull(),
    auditIndex: bigint('audit_index', { mode: 'number' }).notNull(),
    feeFen: integer('fee_fen').notNull(),
    sealed: bytea('sealed').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  // The key hash is keyed by the consumer as well as the key, so it alone names a call.
  (table) => [primaryKey({ columns: [table.keyHash] }), index('call_replays_expiry_idx').on(table.expiresAt)],
);

/**
 * Requests to share data between public bodies (measures arts. 15–19). `dueOn` is the China date by which the
 * answer is owed, in working days from the request (policies/calendar/); conditional data needs both the
 * committee's and the source's approval, and a refusal names its reason and legal basis.
 */
export const sharingRequests = pgTable(
  'sharing_requests',
  {
    id: text('id').primaryKey(),
    requesterInstitutionId: text('requester_institution_id')
      .notNull()
      .references(() => institutions.id),
    requestedBy: text('requested_by')
      .notNull()
      .references(() => principals.id),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    columns: jsonb('columns').$type<string[] | null>(),
    duty: text('duty').notNull(),
    scenario: text('scenario').notNull(),
    sharingType: text('sharing_type', { enum: ['unconditional', 'conditional'] }).notNull(),
    status: text('status', { enum: ['pending', 'approved', 'refused'] }).notNull(),
    dueOn: text('due_on').notNull(),
    deadlineProvisional: boolean('deadline_provisional').notNull(),
    sourceDecision: text('source_decision', { enum: ['approve', 'refuse'] }),
    sourceDecidedBy: text('source_decided_by'),
    committeeDecision: text('committee_decision', { enum: ['approve', 'refuse'] }),
    committeeDecidedBy: text('committee_decided_by'),
    refusalReason: text('refusal_reason'),
    refusalLegalBasis: text('refusal_legal_basis'),
    answeredOn: text('answered_on'),
    /** Set when the overdue alert was raised, so each late request alerts regulators once. */
    overdueAlertedAt: timestamp('overdue_alerted_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('sharing_requests_dataset_idx').on(table.datasetId), index('sharing_requests_requester_idx').on(table.requesterInstitutionId)],
);

/**
 * One run of a dataset's quality rules over one version (measures arts. 9, 12), inside DuckDB: per-rule counts
 * of rows checked and rows in violation, never the rows. A failing version is flagged to its source.
 */
export const qualityChecks = pgTable(
  'quality_checks',
  {
    id: text('id').primaryKey(),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    versionId: text('version_id')
      .notNull()
      .references(() => datasetVersions.id),
    versionNumber: integer('version_number').notNull(),
    /** 0–100, one decimal: the mean over rules that ran of the share of checked rows that pass (null if none ran). */
    score: doublePrecision('score'),
    passed: boolean('passed').notNull(),
    results: jsonb('results').$type<QualityRuleResult[]>().notNull(),
    checkedAt: timestamp('checked_at', { withTimezone: true }).notNull(),
  },
  (table) => [uniqueIndex('quality_checks_version_idx').on(table.versionId), index('quality_checks_dataset_idx').on(table.datasetId)],
);

/**
 * An objection to shared data (measures art. 13): raised by an institution that holds the data through sharing,
 * answered by the source before `dueOn` — corrected by a new version, or rejected with a reason.
 */
export const disputes = pgTable(
  'disputes',
  {
    id: text('id').primaryKey(),
    raiserInstitutionId: text('raiser_institution_id')
      .notNull()
      .references(() => institutions.id),
    raisedBy: text('raised_by')
      .notNull()
      .references(() => principals.id),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    columnName: text('column_name'),
    /** The raiser's own reference to the record (its key as the raiser holds it), never looked up in the data here. */
    recordReference: text('record_reference'),
    description: text('description').notNull(),
    status: text('status', { enum: ['open', 'corrected', 'rejected'] }).notNull(),
    dueOn: text('due_on').notNull(),
    deadlineProvisional: boolean('deadline_provisional').notNull(),
    answer: text('answer'),
    correctedVersionId: text('corrected_version_id').references(() => datasetVersions.id),
    answeredBy: text('answered_by'),
    answeredOn: text('answered_on'),
    overdueAlertedAt: timestamp('overdue_alerted_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('disputes_dataset_idx').on(table.datasetId)],
);

/**
 * A demand for public data to be opened (measures art. 20: opening is demand-driven, 以需求为导向): anyone signed in
 * names the data it needs and what for; the data centre answers — planned, declined with a reason, or met by an open
 * catalogue entry. The demands, without who made them, are public, so demand for the same data shows.
 */
export const openDataDemands = pgTable(
  'open_data_demands',
  {
    id: text('id').primaryKey(),
    requestedBy: text('requested_by')
      .notNull()
      .references(() => principals.id),
    /** The catalogue entry the demand concerns, when the data is catalogued but not open. */
    datasetId: text('dataset_id').references(() => datasets.id),
    subject: text('subject').notNull(),
    scenario: text('scenario').notNull(),
    status: text('status', { enum: ['open', 'planned', 'declined', 'met'] }).notNull(),
    answer: text('answer'),
    /** The open catalogue entry that meets the demand. */
    metByDatasetId: text('met_by_dataset_id').references(() => datasets.id),
    answeredBy: text('answered_by'),
    answeredAt: timestamp('answered_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('open_data_demands_created_idx').on(table.createdAt)],
);

/**
 * A sharing channel (measures art. 17), opened by an approved sharing request: the requesting institution pulls
 * the data in scope through it. Idle channels freeze, then close; a closed channel needs a new request.
 */
export const sharingChannels = pgTable(
  'sharing_channels',
  {
    id: text('id').primaryKey(),
    requestId: text('request_id')
      .notNull()
      .references(() => sharingRequests.id),
    institutionId: text('institution_id')
      .notNull()
      .references(() => institutions.id),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    columns: jsonb('columns').$type<string[]>().notNull(),
    purpose: text('purpose').notNull(),
    pullsPerDay: integer('pulls_per_day').notNull(),
    status: text('status', { enum: ['open', 'frozen', 'suspended', 'closed'] }).notNull(),
    statusReason: text('status_reason'),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }).notNull(),
    statusChangedAt: timestamp('status_changed_at', { withTimezone: true }).notNull(),
    openedAt: timestamp('opened_at', { withTimezone: true }).notNull(),
  },
  (table) => [uniqueIndex('sharing_channels_request_idx').on(table.requestId), index('sharing_channels_institution_idx').on(table.institutionId)],
);

/** Every pull through a channel, refused ones included: the volume check counts them, regulators read them. */
export const channelPulls = pgTable(
  'channel_pulls',
  {
    id: text('id').primaryKey(),
    channelId: text('channel_id')
      .notNull()
      .references(() => sharingChannels.id),
    principalId: text('principal_id').notNull(),
    columns: jsonb('columns').$type<string[]>().notNull(),
    versionId: text('version_id'),
    rowCount: bigint('row_count', { mode: 'number' }),
    outcome: text('outcome', { enum: ['delivered', 'beyond_scope', 'beyond_volume', 'refused'] }).notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
  },
  (table) => [index('channel_pulls_channel_idx').on(table.channelId, table.at)],
);

/**
 * A data registration (measures art. 8): a project or system with its table schemas, unstructured data and
 * procured data. The data centre reviews it; approved registrations enter the catalogue and are filed with the
 * committee (`filingNumber`).
 */
export const registrations = pgTable(
  'registrations',
  {
    id: text('id').primaryKey(),
    institutionId: text('institution_id')
      .notNull()
      .references(() => institutions.id),
    submittedBy: text('submitted_by').notNull(),
    kind: text('kind', { enum: ['project', 'system'] }).notNull(),
    name: text('name').notNull(),
    content: jsonb('content').$type<Record<string, unknown>>().notNull(),
    /** The technical review's findings for the current submission (empty when it is complete). */
    findings: jsonb('findings').$type<Array<{ path: string; problem: string }>>().notNull(),
    status: text('status', { enum: ['submitted', 'returned', 'filed'] }).notNull(),
    submission: integer('submission').notNull(),
    returnReasons: jsonb('return_reasons').$type<string[] | null>(),
    reviewedBy: text('reviewed_by'),
    filingNumber: text('filing_number'),
    filedAt: timestamp('filed_at', { withTimezone: true }),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('registrations_institution_idx').on(table.institutionId), uniqueIndex('registrations_filing_idx').on(table.filingNumber)],
);

/**
 * The catalogue's version history (measures art. 10): every change to an entry is a revision with a readable
 * diff, proposed by the source and reviewed before it is published. Revision 1 is the registration itself.
 */
/**
 * A released aggregate output proposed as a high-quality open dataset (measures art. 14: data integrated into
 * datasets and catalogued). The data centre proposes; a regulator publishes it (a catalogue entry, L1 open data,
 * loaded from the released cells) or rejects it with a reason.
 */
export const derivedDatasets = pgTable(
  'derived_datasets',
  {
    id: text('id').primaryKey(),
    jobId: text('job_id')
      .notNull()
      .references(() => jobs.id),
    datasetId: text('dataset_id').notNull(),
    /** Title, description and category of the entry to be. */
    entry: jsonb('entry').$type<{ title: string; titleZh: string; description: string; descriptionZh?: string; category: string }>().notNull(),
    status: text('status', { enum: ['proposed', 'published', 'rejected'] }).notNull(),
    proposedBy: text('proposed_by').notNull(),
    decidedBy: text('decided_by'),
    decisionReason: text('decision_reason'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
  },
  (table) => [
    index('derived_datasets_job_idx').on(table.jobId),
    // One open proposal per dataset id: the insert decides between proposals sent at the same moment.
    uniqueIndex('derived_datasets_one_open_idx').on(table.datasetId).where(sql`status = 'proposed'`),
  ],
);

/**
 * A request for Lingang data from a government unit outside the special area (measures art. 19, second paragraph):
 * filed with the committee with its use scenario, data list and security safeguards, confirmed and reviewed by the
 * committee, then delivered by the data centre to the city's data resource platform.
 */
export const externalRequests = pgTable(
  'external_requests',
  {
    id: text('id').primaryKey(),
    requester: text('requester').notNull(),
    scenario: text('scenario').notNull(),
    /** The data list: each dataset with the columns asked for. */
    items: jsonb('items').$type<Array<{ dataset: string; columns: string[] }>>().notNull(),
    safeguards: text('safeguards').notNull(),
    status: text('status', { enum: ['pending', 'approved', 'refused', 'delivered'] }).notNull(),
    recordedBy: text('recorded_by').notNull(),
    decidedBy: text('decided_by'),
    decisionReason: text('decision_reason'),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    /** Each delivery to the city platform: the version, its hash and the rows that went. */
    deliveries: jsonb('deliveries').$type<Array<{ dataset: string; version: number; contentHash: string; rows: number; by: string; at: string }>>().notNull().default([]),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('external_requests_created_idx').on(table.createdAt)],
);

/**
 * The data centre's periodic evaluation of a conditionally shared dataset (measures art. 16): keep it conditional,
 * with the reason, or convert it to unconditional sharing, which proposes a catalogue revision for review.
 */
export const sharingEvaluations = pgTable(
  'sharing_evaluations',
  {
    id: text('id').primaryKey(),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    outcome: text('outcome', { enum: ['keep_conditional', 'convert_unconditional'] }).notNull(),
    reason: text('reason').notNull(),
    /** The catalogue revision a conversion proposed. */
    revision: integer('revision'),
    evaluatedBy: text('evaluated_by').notNull(),
    evaluatedAt: timestamp('evaluated_at', { withTimezone: true }).notNull(),
  },
  (table) => [index('sharing_evaluations_dataset_idx').on(table.datasetId, table.evaluatedAt)],
);

/** One overdue alert per dataset and due date: the unique key decides which of several sweeping servers raises it. */
export const sharingEvaluationAlerts = pgTable(
  'sharing_evaluation_alerts',
  {
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    dueOn: text('due_on').notNull(),
    alertedAt: timestamp('alerted_at', { withTimezone: true }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.datasetId, table.dueOn] })],
);

export const catalogueRevisions = pgTable(
  'catalogue_revisions',
  {
    id: text('id').primaryKey(),
    datasetId: text('dataset_id')
      .notNull()
      .references(() => datasets.id),
    revision: integer('revision').notNull(),
    status: text('status', { enum: ['proposed', 'published', 'rejected'] }).notNull(),
    entry: jsonb('entry').$type<Record<string, unknown>>().notNull(),
    diff: jsonb('diff').$type<Array<{ field: string; from: unknown; to: unknown }>>().notNull(),
    note: text('note'),
    proposedBy: text('proposed_by').notNull(),
    reviewedBy: text('reviewed_by'),
    reviewReason: text('review_reason'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
  },
  (table) => [uniqueIndex('catalogue_revisions_number_idx').on(table.datasetId, table.revision)],
);

/**
 * Consumers' registered homomorphic public keys (BFV for verification, CKKS for scoring). A key is sent once and
 * named by its id in later calls, instead of 320 KiB with every call. Checked like an inline key when registered
 * (seeded, exact size, loads under the server's parameters) and again at every use. Base64 text, as it travels.
 */
export const heKeys = pgTable(
  'he_keys',
  {
    id: text('id').primaryKey(),
    principalId: text('principal_id')
      .notNull()
      .references(() => principals.id),
    scheme: text('scheme', { enum: ['bfv', 'ckks'] }).notNull(),
    publicKey: text('public_key').notNull(),
    sha256: text('sha256').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
  },
  (table) => [uniqueIndex('he_keys_owner_key_idx').on(table.principalId, table.sha256)],
);

/**
 * Answers to state-changing requests sent with an Idempotency-Key (src/http/idempotent-requests.ts), kept a day so
 * that a retry gets the first answer instead of doing the thing twice. A row is `pending` while its request is being
 * answered. Responses kept are small JSON answers of governance routes, never a token or data; rows past `expiresAt`
 * are deleted by the governance sweep.
 */
export const requestReplays = pgTable(
  'request_replays',
  {
    principalId: text('principal_id').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    requestHash: text('request_hash').notNull(),
    state: text('state', { enum: ['pending', 'done'] }).notNull(),
    status: integer('status'),
    body: text('body'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.principalId, table.idempotencyKey] }), index('request_replays_expiry_idx').on(table.expiresAt)],
);
