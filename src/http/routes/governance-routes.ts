import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { datasetEntity, platformEntity } from '../../authz/entities.js';
import { findDataset } from '../../catalog/catalogue.js';
import { answerDispute, disputeAnswerSchema, disputeSchema, listDisputes, raiseDispute, toDisputeView } from '../../governance/disputes.js';
import { latestQualityChecks, qualityHistory, type QualityCheckRow } from '../../domain-store/quality-check.js';
import { listRegistrations, registrationReviewSchema, registrationSchema, reviewRegistration, submitRegistration, toRegistrationView } from '../../governance/registrations.js';
import { changeChannelStatus, listChannels, pullThroughChannel, toChannelView } from '../../governance/sharing-channels.js';
import { evaluateSharing, evaluationsDue, raiseEvaluationAlerts, sharingEvaluationSchema, toEvaluationView } from '../../governance/sharing-evaluations.js';
import { decideDerivedDataset, derivedDatasetSchema, derivedDecisionSchema, listDerivedDatasets, proposeDerivedDataset, toDerivedView } from '../../governance/derived-datasets.js';
import { eq } from 'drizzle-orm';
import { datasets } from '../../db/schema.js';
import { answerOpenDataDemand, demandOpenData, demandsPerDataset, listOpenDataDemands, openDataAnswerSchema, openDataDemandSchema, openDemandsPerPrincipal, toOpenDataDemandView } from '../../governance/open-data-demands.js';
import { notFound } from '../../errors/app-error.js';
import { datasetUses, datasetUsesColumns, datasetUsesTable } from '../../governance/dataset-uses.js';
import { toCsv } from '../csv.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody, requestedPeriod, spreadsheetFlag, thirtyDaysBefore } from '../openapi-common.js';
import { sharedCsvResponse } from '../csv.js';

const view = (name: string) => z.record(z.string(), z.unknown()).openapi(name);
const idParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });
const columnList = z
  .string()
  .max(4000)
  .regex(/^[a-z_][a-z0-9_]{0,62}(,[a-z_][a-z0-9_]{0,62})*$/, 'a comma-separated list of column names')
  .optional()
  .openapi({ description: 'Columns to pull, comma-separated (default: the channel\'s whole scope)', example: 'uscc,name,status' });

const routes = {
  quality: createRoute({
    method: 'get',
    path: '/v1/datasets/{id}/quality',
    tags: ['governance'],
    summary: 'Quality checks of every version, rule by rule: rows checked and rows in violation, never rows (the source institution, the data centre and regulators; arts. 9, 12)',
    security: bearerSecurity,
    request: { params: idParam },
    responses: { 200: { description: 'Checks, newest first', content: { 'application/json': { schema: z.object({ dataset: z.string(), checks: z.array(view('QualityCheck')) }) } } }, ...errorResponses(403, 404) },
  }),
  uses: createRoute({
    method: 'get',
    path: '/v1/datasets/{id}/uses',
    tags: ['governance'],
    summary: "A dataset's use trail (art. 12, 数据使用可追溯): jobs over it, products built on it and their calls, channel pulls, exports, derived datasets and incidents in a period, each with its audit leaves (the source institution, the data centre and regulators)",
    description:
      'Jobs carry their operator, stated purpose, kind, state, code and every audit leaf of the job — never the SQL or the reason text. Products carry their calls in the period, counted (public-interest and industry), with the first and last call\'s leaf — never a consumer, a subject or an answer. Pulls and exports name the body that received the copy, the version, the columns and the row count. Incidents over the data (a job beyond its licence, probing, differencing, a pull beyond a channel\'s scope or volume) carry their kind, and the operator and job where an operator caused one. The newest 500 jobs are listed (`jobsTruncated` says when more fell in the period); the totals count them all. Each leaf can be proved against a signed checkpoint (`GET /v1/audit/proofs/inclusion`).',
    security: bearerSecurity,
    request: {
      params: idParam,
      query: z.object({
        from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Start (default: 30 days before `to`)' }),
        to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'End, exclusive (default: now)' }),
        format: z.enum(['json', 'csv']).default('json').openapi({ description: 'csv: one line per use (use, at, by_or_to, what, state, code, calls, rows, audit_leaves)' }),
      }),
    },
    responses: { 200: { description: 'The use trail', content: { 'application/json': { schema: view('DatasetUses') }, 'text/csv': { schema: z.string() } } }, ...errorResponses(400, 403, 404) },
  }),
  flags: createRoute({
    method: 'get',
    path: '/v1/quality-flags',
    tags: ['governance'],
    summary: 'Datasets whose latest version fails its quality rules (a source institution sees its own; regulators and the data centre all)',
    security: bearerSecurity,
    responses: { 200: { description: 'Failing datasets', content: { 'application/json': { schema: z.object({ flags: z.array(view('QualityCheck')) }) } } }, ...errorResponses(403) },
  }),
  channels: createRoute({
    method: 'get',
    path: '/v1/channels',
    tags: ['governance'],
    summary: 'Sharing channels with scope, state and the day an idle channel freezes (art. 17)',
    security: bearerSecurity,
    responses: { 200: { description: 'Channels', content: { 'application/json': { schema: z.object({ channels: z.array(view('SharingChannel')) }) } } }, ...errorResponses(403) },
  }),
  pull: createRoute({
    method: 'get',
    path: '/v1/channels/{id}/data',
    tags: ['governance'],
    summary: 'Pull the shared data in scope as CSV (the requesting public body only; operators never receive shared data)',
    description: 'Columns outside the channel\'s scope are refused and reported to the regulator; pulls beyond the channel\'s daily volume stop the channel.',
    security: bearerSecurity,
    request: { params: idParam, query: z.object({ columns: columnList, spreadsheet: spreadsheetFlag }) },
    responses: { 200: { description: 'The data of the latest version, as CSV', content: { 'text/csv': { schema: z.string() } } }, ...errorResponses(400, 403, 404, 409, 429) },
  }),
  channelStatus: createRoute({
    method: 'post',
    path: '/v1/channels/{id}/status',
    tags: ['governance'],
    summary: 'Reactivate a frozen or stopped channel, or close one (the data centre or regulators)',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(z.strictObject({ action: z.enum(['reactivate', 'close']), reason: z.string().min(1).max(2000) }), 'What to do, and why') },
    responses: { 200: { description: 'The channel', content: { 'application/json': { schema: view('SharingChannel') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  raise: createRoute({
    method: 'post',
    path: '/v1/disputes',
    tags: ['governance'],
    summary: 'Object to shared data you hold: a dataset, a field or a record (public bodies; art. 13). The source answers by the deadline',
    security: bearerSecurity,
    request: { body: jsonBody(disputeSchema, 'The objection') },
    responses: { 201: { description: 'The dispute with its deadline', content: { 'application/json': { schema: view('Dispute') } } }, ...errorResponses(400, 403, 404) },
  }),
  demandOpenData: createRoute({
    method: 'post',
    path: '/v1/open-data-demands',
    tags: ['governance'],
    summary: 'Ask for public data to be opened, saying what for (anyone signed in; art. 20: opening is demand-driven). The data centre answers',
    description: `Name the data (and its catalogue entry, if it is catalogued and not open) and the use. At most ${openDemandsPerPrincipal} of one account's demands await an answer at a time (TOO_MANY_OPEN_DEMANDS). A catalogue entry that is open already is refused (ALREADY_OPEN): query it row by row.`,
    security: bearerSecurity,
    request: { body: jsonBody(openDataDemandSchema, 'The data wanted and the use') },
    responses: { 201: { description: 'The demand', content: { 'application/json': { schema: view('OpenDataDemand') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  openDataDemands: createRoute({
    method: 'get',
    path: '/v1/open-data-demands',
    tags: ['governance'],
    summary: 'Every demand for open data with its answer, newest first, and how many name the same catalogue entry (anyone signed in; who made each is shown to its maker, the data centre and regulators)',
    security: bearerSecurity,
    responses: { 200: { description: 'Demands', content: { 'application/json': { schema: z.object({ demands: z.array(view('OpenDataDemand')) }) } } }, ...errorResponses(403) },
  }),
  answerOpenData: createRoute({
    method: 'post',
    path: '/v1/open-data-demands/{id}/answer',
    tags: ['governance'],
    summary: 'Answer a demand for open data (the data centre): planned or declined with a reason, or met by an open catalogue entry',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(openDataAnswerSchema, 'The answer') },
    responses: { 200: { description: 'The demand', content: { 'application/json': { schema: view('OpenDataDemand') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  proposeDerived: createRoute({
    method: 'post',
    path: '/v1/derived-datasets',
    tags: ['governance'],
    summary: 'Propose the released output of an aggregate job as a high-quality open dataset (the data centre; art. 14)',
    description: 'A regulator other than the proposer publishes it: an L1 open catalogue entry of the data centre, loaded from the released cells (suppressed cells stay empty), its lineage in its legal basis.',
    security: bearerSecurity,
    request: { body: jsonBody(derivedDatasetSchema, 'The job and the entry to be') },
    responses: { 201: { description: 'The proposal', content: { 'application/json': { schema: view('DerivedDataset') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  derived: createRoute({
    method: 'get',
    path: '/v1/derived-datasets',
    tags: ['governance'],
    summary: 'Proposed, published and rejected derived datasets (the data centre and regulators)',
    security: bearerSecurity,
    responses: { 200: { description: 'Proposals, newest first', content: { 'application/json': { schema: z.object({ proposals: z.array(view('DerivedDataset')) }) } } }, ...errorResponses(403) },
  }),
  decideDerived: createRoute({
    method: 'post',
    path: '/v1/derived-datasets/{id}/decision',
    tags: ['governance'],
    summary: 'Publish a proposed derived dataset into the catalogue, or reject it with a reason (a regulator)',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(derivedDecisionSchema, 'The decision') },
    responses: { 200: { description: 'The proposal', content: { 'application/json': { schema: view('DerivedDataset') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  evaluate: createRoute({
    method: 'post',
    path: '/v1/datasets/{id}/sharing-evaluations',
    tags: ['governance'],
    summary: 'Evaluate a conditionally shared dataset (the data centre; art. 16): keep it conditional, or convert it to unconditional sharing',
    description: 'A conversion proposes the catalogue revision sharingType: unconditional, which a reviewer other than the evaluator publishes.',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(sharingEvaluationSchema, 'The outcome and its reason') },
    responses: { 201: { description: 'The evaluation (with the proposed revision for a conversion)', content: { 'application/json': { schema: view('SharingEvaluation') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  evaluationsDue: createRoute({
    method: 'get',
    path: '/v1/sharing-evaluations',
    tags: ['governance'],
    summary: 'Conditionally shared datasets with the day their next evaluation is due and whether it is overdue (the data centre and regulators; art. 16)',
    security: bearerSecurity,
    request: { query: z.object({ overdue: z.enum(['true', 'false']).optional() }) },
    responses: { 200: { description: 'Datasets, soonest due first', content: { 'application/json': { schema: z.object({ datasets: z.array(view('SharingEvaluationDue')) }) } } }, ...errorResponses(403) },
  }),
  disputes: createRoute({
    method: 'get',
    path: '/v1/disputes',
    tags: ['governance'],
    summary: 'Disputes with deadlines and overdue flags (public bodies: raised by them or over their data; regulators: all)',
    security: bearerSecurity,
    request: { query: z.object({ overdue: z.enum(['true', 'false']).optional() }) },
    responses: { 200: { description: 'Disputes', content: { 'application/json': { schema: z.object({ disputes: z.array(view('Dispute')) }) } } }, ...errorResponses(403) },
  }),
  answer: createRoute({
    method: 'post',
    path: '/v1/disputes/{id}/answer',
    tags: ['governance'],
    summary: 'Answer a dispute (the source institution): corrected, naming the new version, or rejected with a reason',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(disputeAnswerSchema, 'The answer') },
    responses: { 200: { description: 'The dispute', content: { 'application/json': { schema: view('Dispute') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  register: createRoute({
    method: 'post',
    path: '/v1/registrations',
    tags: ['governance'],
    summary: 'Register a project or system: basic information, table schemas, unstructured and procured data (public bodies; art. 8). The technical review runs at once',
    security: bearerSecurity,
    request: { body: jsonBody(registrationSchema, 'The registration') },
    responses: { 201: { description: 'The registration with the technical review\'s findings', content: { 'application/json': { schema: view('Registration') } } }, ...errorResponses(400, 403) },
  }),
  resubmit: createRoute({
    method: 'put',
    path: '/v1/registrations/{id}',
    tags: ['governance'],
    summary: 'Resubmit a returned registration, corrected',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(registrationSchema, 'The corrected registration') },
    responses: { 200: { description: 'The registration', content: { 'application/json': { schema: view('Registration') } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  registrations: createRoute({
    method: 'get',
    path: '/v1/registrations',
    tags: ['governance'],
    summary: 'Registrations and filings (public bodies: their own; the data centre and the committee: all)',
    security: bearerSecurity,
    request: { query: z.object({ status: z.enum(['submitted', 'returned', 'filed']).optional() }) },
    responses: { 200: { description: 'Registrations', content: { 'application/json': { schema: z.object({ registrations: z.array(view('Registration')) }) } } }, ...errorResponses(403) },
  }),
  reviewRegistration: createRoute({
    method: 'post',
    path: '/v1/registrations/{id}/review',
    tags: ['governance'],
    summary: 'Approve (the tables enter the catalogue and the registration is filed with the committee) or return with reasons (the data centre)',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(registrationReviewSchema, 'The decision') },
    responses: { 200: { description: 'The registration', content: { 'application/json': { schema: view('Registration') } } }, ...errorResponses(400, 403, 404, 409, 422) },
  }),
};

const toQualityView = (check: QualityCheckRow) => ({
  dataset: check.datasetId,
  version: check.versionNumber,
  score: check.score,
  passed: check.passed,
  rules: check.results,
  checkedAt: check.checkedAt.toISOString(),
});

export function governanceRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { authorizer } = platform;

  app.openapi(routes.quality, async (c) => {
    const dataset = await findDataset(platform.db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(c.get('principal'), 'quality:read', datasetEntity(dataset), { hideExistence: true });
    return c.json({ dataset: dataset.id, checks: (await qualityHistory(platform.db, dataset.id)).map(toQualityView) }, 200);
  });

  app.openapi(routes.uses, async (c) => {
    const dataset = await findDataset(platform.db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(c.get('principal'), 'dataset:read-uses', datasetEntity(dataset), { hideExistence: true });
    const query = c.req.valid('query');
    const uses = await datasetUses(platform.db, dataset, requestedPeriod(query, platform.clock(), thirtyDaysBefore));
    if (query.format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header('Content-Disposition', `attachment; filename="${dataset.id}-uses.csv"`);
      return c.body(toCsv([...datasetUsesColumns], datasetUsesTable(uses)), 200);
    }
    return c.json(uses, 200);
  });

  app.openapi(routes.flags, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'quality:list', platformEntity);
    // A public body sees its own datasets' flags; regulators and the data centre all of them.
    const owned =
      principal.role === 'institution'
        ? (await platform.db.select({ id: datasets.id }).from(datasets).where(eq(datasets.institutionId, principal.institutionId ?? ''))).map((row) => row.id)
        : undefined;
    const latest = await latestQualityChecks(platform.db, owned);
    return c.json({ flags: [...latest.values()].filter((check) => !check.passed).map(toQualityView) }, 200);
  });

  app.openapi(routes.channels, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'channel:list', platformEntity);
    return c.json({ channels: (await listChannels(platform, principal)).map((channel) => toChannelView(channel, platform.governance)) }, 200);
  });

  app.openapi(routes.pull, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'channel:pull', platformEntity);
    const requested = c.req.valid('query').columns?.split(',');
    const delivery = await pullThroughChannel(platform, principal, c.req.valid('param').id, requested, { forSpreadsheet: c.req.valid('query').spreadsheet === 'true' });
    return sharedCsvResponse(c, delivery, 'shared.csv');
  });

  app.openapi(routes.channelStatus, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'channel:manage', platformEntity);
    const body = c.req.valid('json');
    return c.json(toChannelView(await changeChannelStatus(platform, principal, c.req.valid('param').id, body.action, body.reason), platform.governance), 200);
  });

  app.openapi(routes.proposeDerived, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'derived:propose', platformEntity);
    return c.json(toDerivedView(await proposeDerivedDataset(platform, principal, c.req.valid('json'))), 201);
  });

  app.openapi(routes.derived, async (c) => {
    await authorizer.require(c.get('principal'), 'derived:list', platformEntity);
    return c.json({ proposals: (await listDerivedDatasets(platform)).map(toDerivedView) }, 200);
  });

  app.openapi(routes.decideDerived, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'derived:decide', platformEntity);
    return c.json(toDerivedView(await decideDerivedDataset(platform, principal, c.req.valid('param').id, c.req.valid('json'))), 200);
  });

  app.openapi(routes.evaluate, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'sharing:evaluate', platformEntity);
    return c.json(toEvaluationView(await evaluateSharing(platform, principal, c.req.valid('param').id, c.req.valid('json'))), 201);
  });

  app.openapi(routes.evaluationsDue, async (c) => {
    await authorizer.require(c.get('principal'), 'sharing:list-evaluations', platformEntity);
    const due = await evaluationsDue(platform);
    // Evaluations that fell due since the last sweep are alerted before the list is answered.
    await raiseEvaluationAlerts(platform, due);
    const overdue = c.req.valid('query').overdue;
    return c.json({ datasets: overdue === undefined ? due : due.filter((entry) => entry.overdue === (overdue === 'true')) }, 200);
  });

  app.openapi(routes.raise, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'dispute:raise', platformEntity);
    return c.json(toDisputeView(await raiseDispute(platform, principal, c.req.valid('json')), platform.clock()), 201);
  });

  app.openapi(routes.disputes, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'dispute:list', platformEntity);
    const views = (await listDisputes(platform, principal)).map((row) => toDisputeView(row, platform.clock()));
    const overdue = c.req.valid('query').overdue;
    return c.json({ disputes: overdue === undefined ? views : views.filter((entry) => entry.overdue === (overdue === 'true')) }, 200);
  });

  app.openapi(routes.answer, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'dispute:answer', platformEntity);
    return c.json(toDisputeView(await answerDispute(platform, principal, c.req.valid('param').id, c.req.valid('json')), platform.clock()), 200);
  });

  app.openapi(routes.demandOpenData, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'open-data:demand', platformEntity);
    const demand = await demandOpenData(platform, principal, c.req.valid('json'));
    return c.json(toOpenDataDemandView(demand, principal, await demandsForDataset(demand.datasetId)), 201);
  });

  app.openapi(routes.openDataDemands, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'open-data:list', platformEntity);
    const [demands, perDataset] = await Promise.all([listOpenDataDemands(platform), demandsPerDataset(platform)]);
    return c.json({ demands: demands.map((demand) => toOpenDataDemandView(demand, principal, perDataset.get(demand.datasetId ?? '') ?? 0)) }, 200);
  });

  app.openapi(routes.answerOpenData, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'open-data:answer', platformEntity);
    const demand = await answerOpenDataDemand(platform, principal, c.req.valid('param').id, c.req.valid('json'));
    return c.json(toOpenDataDemandView(demand, principal, await demandsForDataset(demand.datasetId)), 200);
  });

  const demandsForDataset = async (datasetId: string | null) => (datasetId ? ((await demandsPerDataset(platform, datasetId)).get(datasetId) ?? 0) : 0);

  app.openapi(routes.register, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'registration:submit', platformEntity);
    return c.json(toRegistrationView(await submitRegistration(platform, principal, c.req.valid('json'))), 201);
  });

  app.openapi(routes.resubmit, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'registration:submit', platformEntity);
    return c.json(toRegistrationView(await submitRegistration(platform, principal, c.req.valid('json'), c.req.valid('param').id)), 200);
  });

  app.openapi(routes.registrations, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'registration:list', platformEntity);
    const rows = await listRegistrations(platform, principal, c.req.valid('query').status);
    return c.json({ registrations: rows.map(toRegistrationView) }, 200);
  });

  app.openapi(routes.reviewRegistration, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'registration:review', platformEntity);
    return c.json(toRegistrationView(await reviewRegistration(platform, principal, c.req.valid('param').id, c.req.valid('json'))), 200);
  });

  return app;
}
