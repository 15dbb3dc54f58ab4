import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { entityRef } from '../../authz/policy-engine.js';
import { AppError, notFound } from '../../errors/app-error.js';
import { findDataset } from '../../catalog/catalogue.js';
import { jobSubmissionSchema, prepareJob } from '../../jobs/prepare-job.js';
import { findJob, listJobs, submitJob, toJobView, type JobRow } from '../../jobs/submit-job.js';
import type { Platform } from '../../platform.js';
import { and, asc, eq } from 'drizzle-orm';
import { auditLeaves, privacyBudgets, reviews } from '../../db/schema.js';
import { toBudgetView } from '../../privacy/budget-ledger.js';
import { dpSummary } from '../../privacy/dp-plan.js';
import { expectedNoise } from '../../privacy/dp-release.js';
import { transitionJob } from '../../release/release-job.js';
import type { AppEnv } from '../app-env.js';
import { toCsv } from '../csv.js';
import { bearerSecurity, errorBodySchema, errorResponses, idempotencyKeyHeader, jsonBody } from '../openapi-common.js';
import { outputColumnsAsWritten } from '../../analysis/analyse-query.js';

const dpSummarySchema = z
  .object({
    epsilon: z.number(),
    delta: z.number(),
    mechanism: z.enum(['laplace', 'gaussian']),
    bounds: z.record(z.string(), z.object({ min: z.number(), max: z.number() })).optional().describe('The clamp bounds the operator gave, as given (the catalogue\'s apply to the other columns)'),
  })
  .openapi('DifferentialPrivacy');

const jobSchema = z
  .object({
    id: z.string(),
    status: z.enum(['rejected', 'queued', 'running', 'failed', 'checked', 'in_review', 'released', 'withheld', 'cancelled']),
    stage: z.string().nullable().openapi({ description: 'What the job is doing now, while it runs' }),
    code: z.string().nullable(),
    reason: z.string().nullable(),
    datasets: z.array(z.string()),
    datasetVersions: z.record(z.string(), z.string()),
    kind: z.enum(['aggregate', 'row_level', 'model']).nullable(),
    differentialPrivacy: dpSummarySchema.nullable().openapi({ description: 'Set for a differentially private aggregate: its ε, δ and noise mechanism' }),
    model: z
      .object({ type: z.enum(['linear', 'logistic']), target: z.string(), features: z.array(z.string()), categories: z.record(z.string(), z.array(z.string())).optional() })
      .nullable()
      .openapi({ description: "A model job's model as submitted: type, target, features, and each category's values (the baseline first)" }),
    grade: z.string().nullable(),
    purpose: z.string(),
    sqlHash: z.string(),
    policyHash: z.string(),
    reviewersRequired: z.number().int(),
    releaseLeafIndex: z.number().int().nullable(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    releasedAt: z.string().nullable(),
  })
  .openapi('Job');

/** One job as its reader asks for it by id: with the SQL as submitted (an operator reads its own; the list leaves it out). */
const jobDetailSchema = jobSchema.extend({ sql: z.string().openapi({ description: 'The SQL as submitted' }) }).openapi('JobDetail');

const resultSchema = z
  .object({
    jobId: z.string(),
    columns: z.array(z.object({ name: z.string(), role: z.string(), ci95HalfWidth: z.number().optional().describe('differentially private counts and sums: the 95 % half-width of every cell\'s noise') })),
    rows: z.array(z.array(z.unknown())),
    manifest: z.record(z.string(), z.unknown()),
    receipt: z.string().openapi({ description: 'Compact JWS signed with the platform key (see /.well-known/jwks.json)' }),
  })
  .openapi('JobResult');

/** What a dry run and a trial run both answer first: the job would be accepted, as what, on which data. */
const acceptedJobSchema = z.object({ decision: z.literal('accept'), kind: z.string(), grade: z.string(), datasets: z.array(z.string()) });
const idParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });
const exampleSubmission = {
  datasets: ['power_readings', 'enterprises'],
  sql: "SELECT p.town, e.industry_code, sum(p.kwh) AS kwh FROM power_readings p JOIN enterprises e ON p.uscc = e.uscc WHERE p.month >= DATE '2024-01-01' GROUP BY p.town, e.industry_code",
  purpose: 'Industrial energy planning for the new city',
};

const routes = {
  submit: createRoute({
    method: 'post',
    path: '/v1/jobs',
    tags: ['jobs'],
    summary: 'Submit an analysis job (DuckDB SQL over the datasets of your licence)',
    security: bearerSecurity,
    description:
      'Send an `Idempotency-Key` header (any 1–200 visible ASCII characters, new for each job) to retry safely: the same key with the same body answers with the job it first created (header `Idempotent-Replayed: true`) instead of queueing another, spending budget twice or counting twice towards the probing limit; the same key with another body is refused with IDEMPOTENCY_KEY_REUSED.',
    request: {
      headers: idempotencyKeyHeader,
      body: { ...jsonBody(jobSubmissionSchema, 'The job'), content: { 'application/json': { schema: jobSubmissionSchema, example: exampleSubmission } } },
    },
    responses: {
      201: { description: 'Queued (or, for a repeated Idempotency-Key, the job that key created)', content: { 'application/json': { schema: jobSchema } } },
      422: {
        description: 'Refused by policy; the refusal is recorded as a rejected job',
        content: { 'application/json': { schema: errorBodySchema.extend({ job: jobSchema }) } },
      },
      ...errorResponses(400, 403, 413),
    },
  }),
  dryRun: createRoute({
    method: 'post',
    path: '/v1/jobs/dry-run',
    tags: ['jobs'],
    summary: 'Analyse a job and give the policy decision without running it (touches no data)',
    security: bearerSecurity,
    request: { body: jsonBody(jobSubmissionSchema, 'The job') },
    responses: {
      200: {
        description: 'Would be accepted',
        content: {
          'application/json': {
            schema: acceptedJobSchema.extend({
              outputColumns: z
                .array(z.object({ name: z.string(), role: z.string(), hiddenWhenSuppressed: z.boolean().optional().describe('a key from a sensitive column or a quasi-identifier: withheld in suppressed cells') }))
                .describe("The output's columns; for a model job, its sufficient statistics, which disclosure control checks as one table cell. `derived`: a window function's column, computed from the released output"),
              model: z
                .object({ type: z.string(), target: z.string(), features: z.array(z.string()), categoryColumns: z.record(z.string(), z.object({ baseline: z.string(), columns: z.record(z.string(), z.string()) })).optional() })
                .optional()
                .describe('For a model job: the model that would be fitted (a category becomes 0/1 features: `categoryColumns` says which value each stands for)'),
              differentialPrivacy: dpSummarySchema.nullable().describe('For a differentially private aggregate: its ε, δ and noise mechanism'),
              expectedNoise: z
                .object({
                  statistics: z.array(z.object({ name: z.string(), mechanism: z.string(), epsilon: z.number(), sensitivity: z.number(), scale: z.number(), ci95HalfWidth: z.number() })),
                  partitionSelection: z.object({ mechanism: z.string(), epsilon: z.number(), delta: z.number(), scale: z.number(), threshold: z.number() }).nullable(),
                  newtonSteps: z.number().int().optional().describe("A logistic model's Newton steps, each drawing the noise of `statistics`"),
                  consistentTotals: z
                    .boolean()
                    .optional()
                    .describe('With ROLLUP, CUBE or GROUPING SETS: whether row counts and sums of totals will be made to add up to their cells after the noise (every key with a public domain)'),
                })
                .nullable()
                .describe(
                  "For a differentially private job: the noise its release would draw, known from the plan alone — each statistic's mechanism, ε share, sensitivity, scale and the half-width its noise stays within with 95 % probability (per figure; for a logistic model, of one Newton step), and for keys without a public domain the partition selection's threshold",
                ),
              policy: z.object({ hash: z.string(), minContributors: z.number(), dominance: z.unknown(), pPercent: z.number().nullable(), roundCountsTo: z.number().nullable(), reviewers: z.number() }),
              analysisMilliseconds: z.number(),
            }),
          },
        },
      },
      ...errorResponses(400, 403, 422),
    },
  }),
  trialRun: createRoute({
    method: 'post',
    path: '/v1/jobs/trial-run',
    tags: ['jobs'],
    summary: "Run an accepted job's SQL over synthetic data made from the catalogue, to see its output's shape (never reads the real data)",
    description:
      "The job is analysed and decided exactly as a submission would be; only if it would be accepted, its SQL runs over synthetic tables built from the catalogue alone — each column's declared public domain, bounds and type, identifiers drawn per column name so that same-named keys join — in a hardened, in-memory DuckDB with a short time limit. The rows are synthetic, so they and DuckDB's error messages are shown as they are; they say nothing about the real data. No disclosure control, review or budget applies, and nothing is recorded as a job.",
    security: bearerSecurity,
    request: { body: jsonBody(jobSubmissionSchema, 'The job') },
    responses: {
      200: {
        description: 'The output over synthetic data',
        content: {
          'application/json': {
            schema: acceptedJobSchema.extend({
              synthetic: z.literal(true).describe('Always true: these rows were computed over synthetic data, not the datasets'),
              rowsPerDataset: z.number().describe('Synthetic rows made for each dataset'),
              columns: z.array(z.object({ name: z.string(), type: z.string() })),
              rows: z.array(z.array(z.unknown())).describe('The first rows of the output (at most 100)'),
              rowCount: z.number().describe('Rows the output had over the synthetic data'),
              milliseconds: z.number(),
            }),
          },
        },
      },
      ...errorResponses(400, 403, 422, 429),
    },
  }),
  estimate: createRoute({
    method: 'post',
    path: '/v1/jobs/estimate',
    tags: ['jobs'],
    summary: "A job's privacy cost and whether it would be allowed now (touches no data, spends nothing)",
    security: bearerSecurity,
    request: { body: jsonBody(jobSubmissionSchema, 'The job') },
    responses: {
      200: {
        description: 'The estimate',
        content: {
          'application/json': {
            schema: z.object({
              allowed: z.boolean(),
              code: z.string().nullable(),
              reason: z.string().nullable(),
              grade: z.string().nullable(),
              epsilon: z.number().openapi({ description: 'ε this job would spend (0 for threshold-protected jobs)' }),
              budget: z.object({ dataset: z.string(), epsilonCap: z.number(), epsilonSpent: z.number(), epsilonRemaining: z.number() }).nullable(),
            }),
          },
        },
      },
      ...errorResponses(400, 403),
    },
  }),
  list: createRoute({
    method: 'get',
    path: '/v1/jobs',
    tags: ['jobs'],
    summary: "List jobs, newest first (operators: their own operator's; regulators: all)",
    security: bearerSecurity,
    request: {
      query: z.object({
        status: z.enum(['rejected', 'queued', 'running', 'failed', 'checked', 'in_review', 'released', 'withheld', 'cancelled']).optional().openapi({ param: { name: 'status', in: 'query' } }),
        kind: z.enum(['aggregate', 'row_level', 'model']).optional().openapi({ param: { name: 'kind', in: 'query' }, description: 'Only jobs of this kind (a differentially private model is a model)' }),
        limit: z.coerce.number().int().min(1).max(1000).default(200).openapi({ param: { name: 'limit', in: 'query' } }),
        offset: z.coerce.number().int().min(0).max(10_000_000).default(0).openapi({ param: { name: 'offset', in: 'query' } }),
      }),
    },
    responses: { 200: { description: 'Jobs, newest first', content: { 'application/json': { schema: z.object({ jobs: z.array(jobSchema) }) } } }, ...errorResponses(403) },
  }),
  get: createRoute({
    method: 'get',
    path: '/v1/jobs/{id}',
    tags: ['jobs'],
    summary: 'One job: status, and progress while it runs',
    security: bearerSecurity,
    request: { params: idParam },
    responses: { 200: { description: 'The job, with its SQL', content: { 'application/json': { schema: jobDetailSchema } } }, ...errorResponses(403, 404) },
  }),
  result: createRoute({
    method: 'get',
    path: '/v1/jobs/{id}/result',
    tags: ['jobs'],
    summary: 'The released output of a job, its manifest and its signed receipt (suppressed cells are null, with reasons)',
    security: bearerSecurity,
    request: {
      params: idParam,
      query: z.object({ format: z.enum(['json', 'csv']).default('json').openapi({ param: { name: 'format', in: 'query' } }) }),
    },
    responses: {
      200: {
        description:
          'The output. CSV carries the receipt in the X-PDS-Receipt header and one more column, last, naming the rule that withheld each withheld row (empty where the row is released), so that a withheld cell is not read as a NULL of the data',
        content: { 'application/json': { schema: resultSchema }, 'text/csv': { schema: z.string() } },
      },
      ...errorResponses(403, 404, 409),
    },
  }),
  cancel: createRoute({
    method: 'post',
    path: '/v1/jobs/{id}/cancel',
    tags: ['jobs'],
    summary: 'Cancel a job that is queued or waiting for review',
    security: bearerSecurity,
    request: { params: idParam },
    responses: { 200: { description: 'Cancelled', content: { 'application/json': { schema: jobSchema } } }, ...errorResponses(403, 404, 409) },
  }),
  record: createRoute({
    method: 'get',
    path: '/v1/jobs/{id}/record',
    tags: ['jobs'],
    summary: "A job's full record for regulators: SQL, plan, internal error text, manifest, reviews, audit leaves",
    security: bearerSecurity,
    request: { params: idParam },
    responses: { 200: { description: 'The record', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } }, ...errorResponses(403, 404) },
  }),
};

/**
 * A released output as CSV rows, a table that must say on its own what its figures are.
 * - Threshold-protected: a withheld cell and a NULL of the data are both empty in CSV, so a last column names the
 *   rule that withheld each row (as the manifest does by row number).
 * - Differentially private (nothing is withheld): each count or sum is followed by its 95 % half-width
 *   (`trips_ci95`), the same in every row, so that the file says how noisy its figures are.
 * - With ROLLUP, CUBE or GROUPING SETS, a total's rolled-up keys are empty too: a column `total_over` names them
 *   (`district+sector`), empty in the rows that are not totals.
 * An added column's name takes underscores before it while an output column already has that name.
 */
type CsvManifest = { suppressedRows?: Array<{ row: number; code: string }>; differentialPrivacy?: unknown; totals?: Array<{ row: number; over: string[] }> };
function resultCsv(output: { columns: Array<{ name: string; ci95HalfWidth?: number }>; rows: unknown[][] }, manifest: CsvManifest | null) {
  const names = new Set(output.columns.map((column) => column.name));
  const unique = (name: string) => {
    let candidate = name;
    while (names.has(candidate)) candidate = `_${candidate}`;
    names.add(candidate);
    return candidate;
  };
  const totals = manifest?.totals ? new Map(manifest.totals.map((entry) => [entry.row, entry.over.join('+')])) : undefined;
  const totalOf = (index: number) => (totals ? [totals.get(index) ?? null] : []);
  if (manifest?.differentialPrivacy) {
    const header = output.columns.flatMap((column) => (column.ci95HalfWidth === undefined ? [column.name] : [column.name, unique(`${column.name}_ci95`)]));
    const rows = output.rows.map((row, index) => [...output.columns.flatMap((column, position) => (column.ci95HalfWidth === undefined ? [row[position]] : [row[position], column.ci95HalfWidth])), ...totalOf(index)]);
    return { header: [...header, ...(totals ? [unique('total_over')] : [])], rows };
  }
  const flag = unique('suppressed');
  const codes = new Map((manifest?.suppressedRows ?? []).map((entry) => [entry.row, entry.code]));
  const totalColumn = totals ? [unique('total_over')] : [];
  return {
    header: [...output.columns.map((column) => column.name), flag, ...totalColumn],
    rows: output.rows.map((row, index) => [...row, codes.get(index) ?? null, ...totalOf(index)]),
  };
}

const jobEntity = (job: JobRow) => ({ uid: { type: 'Job', id: job.id }, attrs: { operator: entityRef('Operator', job.operatorId) }, parents: [] });

export function jobRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { authorizer } = platform;

  app.openapi(routes.submit, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'job:submit', platformEntity);
    const { job, refusal, replayed } = await submitJob(platform, principal, c.req.valid('json'), c.req.valid('header')['idempotency-key']);
    if (replayed) c.header('Idempotent-Replayed', 'true');
    if (refusal) return c.json({ ...refusal.toBody(), job: toJobView(job) }, refusal.status as 422);
    return c.json(toJobView(job), 201);
  });

  app.openapi(routes.dryRun, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'job:submit', platformEntity);
    const prepared = await prepareJob(platform, principal, c.req.valid('json'));
    const grade = platform.disclosurePolicy.grades[prepared.grade];
    return c.json(
      {
        decision: 'accept' as const,
        kind: prepared.kind,
        differentialPrivacy: prepared.dp ? dpSummary(prepared.dp) : null,
        expectedNoise: prepared.dp ? expectedNoise(prepared.dp) : null,
        grade: prepared.grade,
        datasets: prepared.analysis.datasets,
        outputColumns: outputColumnsAsWritten(prepared.analysis),
        ...(prepared.model ? { model: { type: prepared.model.spec.type, target: prepared.model.spec.target, features: prepared.model.spec.features, ...(prepared.model.spec.categoryColumns ? { categoryColumns: prepared.model.spec.categoryColumns } : {}) } } : {}),
        policy: {
          hash: platform.disclosurePolicy.hash,
          minContributors: grade.minContributors,
          dominance: grade.dominance,
          pPercent: grade.pPercent,
          roundCountsTo: grade.roundCountsTo,
          reviewers: grade.reviewers,
        },
        analysisMilliseconds: Math.round(prepared.milliseconds * 100) / 100,
      },
      200,
    );
  });

  app.openapi(routes.trialRun, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'job:submit', platformEntity);
    const submission = c.req.valid('json');
    const prepared = await prepareJob(platform, principal, submission);
    // The full catalogue entries (public domains, bounds), which the analyser's view leaves out.
    const entries = await Promise.all(prepared.analysis.datasets.map((id) => findDataset(platform.db, id)));
    const trial = await platform.syntheticTrial.run(
      entries.map((entry) => entry!),
      submission.sql,
    );
    return c.json({ decision: 'accept' as const, kind: prepared.kind, grade: prepared.grade, datasets: prepared.analysis.datasets, synthetic: true as const, ...trial }, 200);
  });

  app.openapi(routes.estimate, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'job:submit', platformEntity);
    const submission = c.req.valid('json');
    const epsilon = submission.privacy?.differentialPrivacy ? (submission.privacy.epsilon ?? 0) : 0;
    const budgetFor = async (licenceId: string | null, datasetId: string) => {
      if (!licenceId) return null;
      const [budget] = await platform.db.select().from(privacyBudgets).where(and(eq(privacyBudgets.licenceId, licenceId), eq(privacyBudgets.datasetId, datasetId)));
      return budget ? { dataset: datasetId, ...pick(toBudgetView(budget)) } : null;
    };
    try {
      const prepared = await prepareJob(platform, principal, submission);
      const budget = prepared.dp ? await budgetFor(prepared.licenceId, prepared.dp.dataset) : null;
      return c.json({ allowed: true, code: null, reason: null, grade: prepared.grade, epsilon, budget }, 200);
    } catch (error) {
      if (!(error instanceof AppError) || error.status !== 422) throw error;
      return c.json({ allowed: false, code: error.code, reason: error.message, grade: null, epsilon, budget: null }, 200);
    }
  });

  app.openapi(routes.list, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'job:list', platformEntity);
    const rows = await listJobs(platform, principal.role === 'regulator' ? undefined : (principal.operatorId ?? '-'), c.req.valid('query'));
    return c.json({ jobs: rows.map(toJobView) }, 200);
  });

  app.openapi(routes.get, async (c) => {
    const job = await findJob(platform, c.req.valid('param').id);
    if (!job) throw notFound('job');
    await authorizer.require(c.get('principal'), 'job:read', jobEntity(job), { hideExistence: true });
    return c.json({ ...toJobView(job), sql: job.sql }, 200);
  });

  app.openapi(routes.result, async (c) => {
    const job = await findJob(platform, c.req.valid('param').id);
    if (!job) throw notFound('job');
    await authorizer.require(c.get('principal'), 'job:read', jobEntity(job), { hideExistence: true });
    if (job.status !== 'released') {
      throw new AppError('RESULT_NOT_AVAILABLE', `the job is ${job.status.replace('_', ' ')}${job.statusReason ? `: ${job.statusReason}` : ''}`);
    }
    const output = job.output as { columns: Array<{ name: string; role: string; ci95HalfWidth?: number }>; rows: unknown[][] };
    if (c.req.valid('query').format === 'csv') {
      c.header('X-PDS-Receipt', job.receipt!);
      c.header('Content-Disposition', `attachment; filename="${job.id}.csv"`);
      const { header, rows } = resultCsv(output, job.manifest as CsvManifest | null);
      return c.body(toCsv(header, rows), 200, { 'Content-Type': 'text/csv; charset=utf-8' }) as never;
    }
    return c.json({ jobId: job.id, columns: output.columns, rows: output.rows, manifest: job.manifest as Record<string, unknown>, receipt: job.receipt! }, 200);
  });

  app.openapi(routes.cancel, async (c) => {
    const principal = c.get('principal');
    const job = await findJob(platform, c.req.valid('param').id);
    if (!job) throw notFound('job');
    await authorizer.require(principal, 'job:read', jobEntity(job), { hideExistence: true });
    await authorizer.require(principal, 'job:cancel', jobEntity(job));
    const cancelled = await transitionJob(
      platform.db,
      job,
      { status: 'cancelled', stage: null, statusCode: 'CANCELLED', statusReason: 'cancelled by the operator', finishedAt: platform.clock() },
      { actor: principal.id, at: platform.clock(), onlyFrom: ['queued', 'checked', 'in_review'] },
    );
    if (!cancelled) throw new AppError('INVALID_TRANSITION', `a ${job.status.replace('_', ' ')} job cannot be cancelled`);
    return c.json(toJobView(cancelled), 200);
  });

  app.openapi(routes.record, async (c) => {
    const job = await findJob(platform, c.req.valid('param').id);
    if (!job) throw notFound('job');
    await authorizer.require(c.get('principal'), 'job:read-record', jobEntity(job), { hideExistence: true });
    const leaves = await platform.db.select().from(auditLeaves).where(eq(auditLeaves.jobId, job.id)).orderBy(asc(auditLeaves.leafIndex));
    const jobReviews = await platform.db.select().from(reviews).where(eq(reviews.jobId, job.id)).orderBy(asc(reviews.createdAt));
    return c.json(
      {
        job: toJobView(job),
        sql: job.sql,
        plan: job.plan,
        internalDetail: job.internalDetail,
        manifest: job.manifest,
        output: job.output,
        receipt: job.receipt,
        reviews: jobReviews.map((review) => ({ reviewer: review.reviewerId, decision: review.decision, reason: review.reason, at: review.createdAt.toISOString() })),
        audit: leaves.map((leaf) => ({ index: leaf.leafIndex, leaf: leaf.leaf })),
      },
      200,
    );
  });

  return app;
}


const pick = (view: ReturnType<typeof toBudgetView>) => ({ epsilonCap: view.epsilonCap, epsilonSpent: view.epsilonSpent, epsilonRemaining: view.epsilonRemaining });
