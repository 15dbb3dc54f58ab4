import crypto from 'node:crypto';
import { z } from 'zod';
import { analyseQuery, outputColumnsAsWritten, QueryRejected, type QueryAnalysis } from '../analysis/analyse-query.js';
import { buildExecutionPlan, type ExecutionPlan } from '../analysis/execution-plan.js';
import type { Grade } from '../catalog/grades.js';
import { and, eq } from 'drizzle-orm';
import { analysedEntryHash } from '../catalog/analysis-catalogue.js';
import { findDataset } from '../catalog/catalogue.js';
import { privacyBudgets } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import { deltaSchema, epsilonSchema, toMicro, toPico } from '../privacy/budget-ledger.js';
import { buildDpModelPlan } from '../privacy/dp-model.js';
import { buildDpPlan, wholeNumberType, type DpPlan, type DpRequest } from '../privacy/dp-plan.js';
import { openDomainReader } from '../privacy/open-domains.js';
import type { ColumnSpec } from '../catalog/columns.js';
import type { PrincipalRow } from '../identity/principals.js';
import type { Platform } from '../platform.js';
import { licenceCovering } from './licence-coverage.js';
import { buildModelPlan, expandCategories, modelSpecSchema, statisticsSql, type FittedModelSpec, type ModelPlan } from '../models/model-job.js';

export const jobSubmissionSchema = z.strictObject({
  datasets: z
    .array(z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a catalogue id'))
    .min(1)
    .max(10)
    .refine((list) => new Set(list).size === list.length, 'must not repeat a dataset')
    .describe('Catalogue ids of every dataset the SQL reads (each must be in your licence)'),
  sql: z.string().min(1).max(20_000).describe("One DuckDB SELECT; tables are named by dataset id. Only aggregates of protected data come out; window functions over the aggregation's output columns (shares, ranks, running totals, with QUALIFY) are computed from the released output"),
  purpose: z.string().min(1).max(1000).describe('What the result is for; recorded with the job, shown to reviewers and to the sources of its datasets (their use trail, art. 12)'),
  // DESIGN section 7 reserves this for differentially private jobs (the privacy issue); accepted and checked now.
  privacy: z
    .strictObject({
      differentialPrivacy: z.boolean().optional(),
      epsilon: z.number().positive().finite().optional(),
      // δ > 0 allows the discrete Gaussian and partition selection for keys without a public domain.
      delta: z.number().finite().min(0).optional(),
      mechanism: z.enum(['laplace', 'gaussian']).optional(),
      // Clamps for summed columns, by lower-case name: narrower ones for registered columns (less noise, more
      // clipping; never wider than the catalogue's), and the only ones a column computed in a CTE, or an output that
      // sums an expression (`sum(fare * 10) AS fare_jiao`, under its name), has.
      bounds: z.record(z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/), z.strictObject({ min: z.number().finite(), max: z.number().finite() })).optional(),
    })
    .optional()
    .describe('Differential privacy: {differentialPrivacy: true, epsilon, delta?, mechanism?, bounds?} (required for L4 data; with a model, a DP model; docs/privacy.md)'),
  /** A model job: `sql` selects the training rows (they never leave the sandbox); a regression is fitted to them. */
  model: modelSpecSchema.optional().describe('A model job: {type: linear|logistic, target, features}; the SQL selects the training rows (docs/models.md)'),
});
export type JobSubmission = z.infer<typeof jobSubmissionSchema>;

export type PreparedJob = {
  analysis: QueryAnalysis;
  grade: Grade;
  licenceId: string;
  datasetVersions: Record<string, string>;
  /** The catalogue entry each dataset was analysed under (analysedEntryHash): checked again at run and at release. */
  catalogueEntries: Record<string, string>;
  /** Set for differentially private jobs: their plan, built here (it reads no data) so that shape refusals come first. */
  dp?: DpPlan;
  /** Set for model jobs: the model and the operator's SELECT of training rows. */
  model?: { spec: FittedModelSpec; rowsSql: string };
  /** The SQL's shape (`shapeOf`): jobs that differ only in constants share it. */
  shape: string;
  /** What the job is: a model job's analysis is that of its statistics query (an aggregate), but it is a model. */
  kind: 'aggregate' | 'row_level' | 'model';
  milliseconds: number;
};

/**
 * A hash of the parsed statements with every constant's value and every position blanked: the same query with
 * other numbers, dates or strings in it has the same shape. Bisection — moving a constant until a cell appears or
 * is withheld — is many jobs of one shape (policies/disclosure.yaml, `probing`).
 */
export function shapeOf(statements: unknown): string {
  const blank = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(blank);
    if (!value || typeof value !== 'object') return value;
    const node = value as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(node)
        .filter(([key]) => key !== 'query_location')
        .map(([key, field]) => [key, node.class === 'CONSTANT' && key === 'value' ? null : blank(field)]),
    );
  };
  return crypto.createHash('sha256').update(JSON.stringify(blank(statements))).digest('hex');
}

/**
 * A promise started ahead of the step that needs it. If an earlier step refuses the job it is never awaited; its
 * own failure then is of no interest and must not surface as an unhandled rejection.
 */
function background<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * Everything decided before any data is touched: the SQL's analysis, the licence that covers it and the grade
 * policy that applies. Used by submission and by dry runs alike; the plan the sandbox runs is built from it
 * (`planJob`) only for jobs that are queued.
 * A refusal is an AppError with a policy code (422) or OVER_SCOPE; nothing here reads raw data.
 */
export async function prepareJob(platform: Platform, principal: PrincipalRow, submission: JobSubmission): Promise<PreparedJob> {
  const started = performance.now();
  if (!principal.operatorId) throw new AppError('FORBIDDEN', 'only operator analysts submit jobs');
  // A model's categories become 0/1 features computed around the operator's SELECT: the model fitted, and its
  // training rows, are those of the expanded spec.
  const expanded = submission.model ? expandCategories(submission.model, submission.sql) : undefined;
  const model = expanded?.spec;
  const rowsSql = expanded?.rowsSql ?? submission.sql;
  // DuckDB parses on its own threads while the control plane reads the catalogue (PGlite runs on this one); the
  // outcomes are still taken in order below, so a refusal is the one it was when they ran one after the other.
  const parsingAlone = model ? background(platform.parser.parse(submission.sql)) : undefined;
  const parsing = background(platform.parser.parse(model ? statisticsSql(model, rowsSql) : submission.sql));
  const { datasets: catalogue, latestVersions } = await platform.analysisCatalogue();
  for (const id of submission.datasets) {
    if (!catalogue.has(id)) throw new AppError('UNKNOWN_TABLE', `${id} is not a dataset in the catalogue`);
  }

  if (model) {
    // The training query on its own must be one SELECT before it is wrapped in the statistics query.
    const alone = await parsingAlone!;
    if (!alone.ok || alone.statements.length !== 1) {
      throw alone.ok ? new AppError('MULTIPLE_STATEMENTS', 'a job runs exactly one SELECT statement') : new AppError(alone.kind === 'not_select' ? 'NOT_SELECT' : 'PARSE_ERROR', alone.kind === 'not_select' ? 'a model job selects its training rows with one SELECT' : `the SQL does not parse: ${alone.message}`);
    }
    if (model.features.length > platform.disclosurePolicy.models.maxFeatures) {
      throw new AppError('VALIDATION_FAILED', `a model may have at most ${platform.disclosurePolicy.models.maxFeatures} features`, [{ path: 'model.features', problem: 'too many' }]);
    }
  }
  const parsed = await parsing;
  if (!parsed.ok) {
    // A PIVOT statement is no select to DuckDB's serializer; say what to write instead of naming files and settings.
    if (parsed.kind === 'not_select' && /^\s*(un)?pivot\b/i.test(submission.sql)) {
      throw new AppError('UNSUPPORTED_QUERY_SHAPE', 'PIVOT and UNPIVOT statements are not supported; write the table with GROUP BY (one row per cell)');
    }
    throw parsed.kind === 'not_select'
      ? new AppError('NOT_SELECT', 'a job runs one SELECT statement: nothing that reads files, writes, attaches, loads or configures')
      : new AppError('PARSE_ERROR', `the SQL does not parse: ${parsed.message}`);
  }
  const shape = shapeOf(parsed.statements);
  let analysis: QueryAnalysis;
  try {
    analysis = analyseQuery(parsed.statements, { catalogue, requested: submission.datasets, policy: platform.disclosurePolicy, noisyRelease: Boolean(submission.privacy?.differentialPrivacy) && !model, modelStatistics: Boolean(model) });
  } catch (error) {
    if (error instanceof QueryRejected) throw new AppError(error.code, error.reason);
    throw error;
  }

  // DuckDB binds over the empty catalogue while the control plane reads the licences; the licence's refusal (an
  // over-scope incident) still comes first, as it did when the binding waited for it.
  const binding = background(model ? platform.bindCheck.confirm(catalogue, submission.sql) : platform.bindCheck.confirm(catalogue, submission.sql, outputColumnsAsWritten(analysis).length));
  const licence = await licenceCovering(
    platform.db,
    {
      operatorId: principal.operatorId,
      principalId: principal.id,
      datasets: analysis.datasets,
      columnsUsed: analysis.columnsUsed,
      catalogue,
    },
    platform.clock(),
  );

  // After the analyser and the licence, so that policy refusals and over-scope incidents keep their codes.
  const rows = await binding;
  if (model) {
    // The statistics query casts each model column to DOUBLE; text there would fail in the sandbox, generically.
    // (The columns checked are the operator's own; a feature with categories is compared with its values instead.)
    const categorical = new Set(Object.keys(submission.model!.categories ?? {}));
    for (const name of [model.target, ...submission.model!.features.filter((feature) => !categorical.has(feature))]) {
      const type = rows.find((column) => column.name === name)?.type;
      if (type && !/^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|DECIMAL\(\d+,\d+\)|BOOLEAN)$/.test(type)) {
        throw new AppError(
          'BIND_ERROR',
          `model column ${name} is ${type}: a target or feature must be a number or a boolean${name === model.target ? '' : ` (for categories, name their values: "categories": {"${name}": ["<baseline>", "<value>", …]})`}`,
        );
      }
    }
  }

  const grade = analysis.strictestGrade;
  const gradePolicy = platform.disclosurePolicy.grades[grade];
  if (grade === 'core') throw new AppError('CORE_DATA', 'core data is never processed');
  const kind = model ? 'model' : analysis.kind;
  if (!gradePolicy.jobKinds.includes(kind)) {
    throw new AppError('JOB_KIND_NOT_ALLOWED', `${kind.replace('_', '-')} jobs are not allowed on ${grade} data`);
  }
  const wantsDp = Boolean(submission.privacy?.differentialPrivacy);
  if (gradePolicy.differentialPrivacy === 'required' && !wantsDp) {
    throw new AppError('DP_REQUIRED', `${grade} data is released only with differential privacy: submit with "privacy": {"differentialPrivacy": true, "epsilon": …}`);
  }
  let dp: PreparedJob['dp'];
  if (wantsDp) {
    const privacy = submission.privacy!;
    const epsilon = epsilonSchema.safeParse(privacy.epsilon);
    if (!epsilon.success) throw new AppError('VALIDATION_FAILED', 'a differentially private job needs an ε between 0.001 and 10', [{ path: 'privacy.epsilon', problem: epsilon.error.issues[0]!.message }]);
    const delta = deltaSchema.safeParse(privacy.delta ?? 0);
    if (!delta.success) throw new AppError('VALIDATION_FAILED', 'δ must be between 0 and 1e-5', [{ path: 'privacy.delta', problem: delta.error.issues[0]!.message }]);
    const mechanism = privacy.mechanism ?? 'laplace';
    if (mechanism === 'gaussian' && delta.data === 0) throw new AppError('VALIDATION_FAILED', 'the Gaussian mechanism needs a δ > 0', [{ path: 'privacy.delta', problem: 'is zero' }]);
    if (delta.data > 0 && delta.data < 1e-12) throw new AppError('VALIDATION_FAILED', 'δ below 1e-12 is not counted by the ledger', [{ path: 'privacy.delta', problem: 'is too small' }]);
    if (analysis.kind !== 'aggregate') throw new AppError('DP_QUERY_SHAPE', 'differentially private jobs aggregate');
    // A category's 0/1 features are bounded by what they are: 0 and 1 (the operator's own bounds for them, if any, stand).
    const categoryBounds = Object.fromEntries(Object.values(model?.categoryColumns ?? {}).flatMap((category) => Object.keys(category.columns).map((column) => [column, { min: 0, max: 1 }])));
    const bounds = { ...categoryBounds, ...(privacy.bounds ?? {}) };
    const request: DpRequest = { epsilonMicro: toMicro(epsilon.data), deltaPico: toPico(delta.data), mechanism, ...(Object.keys(bounds).length > 0 ? { bounds } : {}) };
    // The plan is built now (it reads no data) so that a query DP cannot answer is refused before budgets are looked at.
    const specs = new Map<string, ColumnSpec[]>();
    for (const id of analysis.datasets) specs.set(id, (await findDataset(platform.db, id))!.columns);
    const { maxRowsPerUnit, newtonSteps } = platform.disclosurePolicy.differentialPrivacy;
    if (model?.type === 'logistic') {
      // Under DP a target that is not 0 or 1 cannot be found out and refused (that would answer a question about the
      // rows): it is clamped to [0, 1]. Its type at least must be able to hold 0 and 1 and nothing between.
      const type = rows.find((column) => column.name === model.target)?.type;
      if (type && !wholeNumberType.test(type)) {
        throw new AppError('DP_QUERY_SHAPE', `a differentially private logistic model needs a target of 0 and 1 (a boolean or a whole number); ${model.target} is ${type}`);
      }
    }
    dp = model ? await buildDpModelPlan(analysis, specs, platform.parser, { maxRowsPerUnit, newtonSteps, model, ...request }) : await buildDpPlan(analysis, catalogue, specs, platform.parser, { maxRowsPerUnit, openDomain: openDomainReader(platform.store, latestVersions), ...request });
    // The bounds as the operator wrote them (not those the platform adds for a category's 0/1 features), to show
    // with the job and send again.
    if (privacy.bounds && Object.keys(privacy.bounds).length > 0) dp = { ...dp, requestedBounds: privacy.bounds };
    // Every protected dataset's budget pays (the plan names them; open data needs none).
    for (const datasetId of dp.budgetDatasets ?? [dp.dataset]) {
      const [budget] = await platform.db
        .select()
        .from(privacyBudgets)
        .where(and(eq(privacyBudgets.licenceId, licence.id), eq(privacyBudgets.datasetId, datasetId)));
      if (!budget) throw new AppError('NO_BUDGET', `no privacy budget is set for this licence and ${datasetId}; a regulator sets one`);
      if (budget.epsilonSpentMicro + toMicro(epsilon.data) > budget.epsilonCapMicro || budget.deltaSpentPico + toPico(delta.data) > budget.deltaCapPico) {
        throw new AppError('BUDGET_EXHAUSTED', `the privacy budget of this licence and ${datasetId} does not cover this job`);
      }
    }
  } else if (submission.privacy?.epsilon !== undefined || submission.privacy?.delta !== undefined || submission.privacy?.bounds || submission.privacy?.mechanism) {
    throw new AppError('VALIDATION_FAILED', 'ε, δ, mechanism and bounds are only used with "differentialPrivacy": true', [{ path: 'privacy', problem: 'set differentialPrivacy' }]);
  }

  const datasetVersions: Record<string, string> = {};
  const catalogueEntries: Record<string, string> = {};
  for (const id of analysis.datasets) {
    const contentHash = latestVersions.get(id);
    if (!contentHash) throw new AppError('NO_DATA_VERSION', `${id} has no data loaded yet`);
    datasetVersions[id] = contentHash;
    catalogueEntries[id] = analysedEntryHash(catalogue.get(id)!);
  }
  return { analysis, grade, licenceId: licence.id, datasetVersions, catalogueEntries, dp, ...(model ? { model: { spec: model, rowsSql } } : {}), shape, kind, milliseconds: performance.now() - started };
}

export async function planJob(platform: Platform, prepared: PreparedJob): Promise<ExecutionPlan | DpPlan | ModelPlan> {
  const grade = platform.disclosurePolicy.grades[prepared.grade];
  const { bucketsPerThreshold } = platform.disclosurePolicy.differencingGuard;
  // A DP model is a DP plan (noisy sufficient statistics), not a thresholded one.
  if (prepared.dp) return prepared.dp;
  if (prepared.model) return buildModelPlan(prepared.model.spec, prepared.model.rowsSql, prepared.analysis, platform.parser, grade, bucketsPerThreshold);
  return buildExecutionPlan(prepared.analysis, platform.parser, grade, bucketsPerThreshold);
}

export const sqlHash = (sql: string) => crypto.createHash('sha256').update(sql).digest('hex');
