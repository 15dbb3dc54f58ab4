import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { decideSharing, listSharing, requestSharing, sharingDecisionSchema, sharingRequestSchema, toSharingView } from '../../governance/sharing-requests.js';
import { supervisionColumns, supervisionReport } from '../../governance/supervision-report.js';
import { decideExternalRequest, deliverExternalRequest, externalDecisionSchema, externalRequestSchema, fileExternalRequest, listExternalRequests, toExternalRequestView } from '../../governance/external-requests.js';
import { sweepGovernance } from '../../governance/deadline-alerts.js';
import type { Platform } from '../../platform.js';
import { sharedCsvResponse, toCsv } from '../csv.js';
import { chinaYearStart } from '../../time/china-time.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody, requestedPeriod, spreadsheetFlag } from '../openapi-common.js';

const requestView = z.record(z.string(), z.unknown()).openapi('SharingRequest');
const idParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });

const externalView = z.record(z.string(), z.unknown()).openapi('ExternalRequest');

const routes = {
  fileExternal: createRoute({
    method: 'post',
    path: '/v1/external-requests',
    tags: ['governance'],
    summary: "File a request from a government unit outside the special area as the committee received it: scenario, data list, safeguards (regulators; art. 19)",
    security: bearerSecurity,
    request: { body: jsonBody(externalRequestSchema, 'The application') },
    responses: { 201: { description: 'The request, pending review', content: { 'application/json': { schema: externalView } } }, ...errorResponses(400, 403, 422) },
  }),
  listExternal: createRoute({
    method: 'get',
    path: '/v1/external-requests',
    tags: ['governance'],
    summary: 'Requests from outside the special area with their review and every delivery to the city platform (regulators and the data centre)',
    security: bearerSecurity,
    responses: { 200: { description: 'Requests, newest first', content: { 'application/json': { schema: z.object({ requests: z.array(externalView) }) } } }, ...errorResponses(403) },
  }),
  decideExternal: createRoute({
    method: 'post',
    path: '/v1/external-requests/{id}/decision',
    tags: ['governance'],
    summary: 'Confirm the need and approve, or refuse with a reason (a regulator other than who filed it)',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(externalDecisionSchema, 'The decision') },
    responses: { 200: { description: 'The request', content: { 'application/json': { schema: externalView } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  deliverExternal: createRoute({
    method: 'get',
    path: '/v1/external-requests/{id}/data',
    tags: ['governance'],
    summary: "Export one dataset of an approved request, the columns in its data list, for the city platform (the data centre); recorded with the version's hash",
    security: bearerSecurity,
    request: { params: idParam, query: z.object({ dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/).openapi({ example: 'enterprises' }), spreadsheet: spreadsheetFlag }) },
    responses: { 200: { description: 'The columns of the latest version, as CSV', content: { 'text/csv': { schema: z.string() } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  create: createRoute({
    method: 'post',
    path: '/v1/sharing-requests',
    tags: ['governance'],
    summary: 'Request shared data for a stated duty and scenario (public bodies; arts. 15–19): answered within 5 working days (unconditional) or 10 (conditional)',
    security: bearerSecurity,
    request: { body: jsonBody(sharingRequestSchema, 'Dataset, optional columns, duty and scenario') },
    responses: { 201: { description: 'The request with its deadline', content: { 'application/json': { schema: requestView } } }, ...errorResponses(400, 403, 404, 422) },
  }),
  list: createRoute({
    method: 'get',
    path: '/v1/sharing-requests',
    tags: ['governance'],
    summary: 'Sharing requests with deadlines and overdue flags (public bodies: made by or concerning them; regulators: all)',
    security: bearerSecurity,
    request: { query: z.object({ overdue: z.enum(['true', 'false']).optional() }) },
    responses: { 200: { description: 'Requests', content: { 'application/json': { schema: z.object({ requests: z.array(requestView) }) } } }, ...errorResponses(403) },
  }),
  decide: createRoute({
    method: 'post',
    path: '/v1/sharing-requests/{id}/decision',
    tags: ['governance'],
    summary: 'Approve or refuse (the source institution; for conditional data also the committee). A refusal gives its reason and legal basis',
    security: bearerSecurity,
    request: { params: idParam, body: jsonBody(sharingDecisionSchema, 'The decision') },
    responses: { 200: { description: 'The request', content: { 'application/json': { schema: requestView } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  supervision: createRoute({
    method: 'get',
    path: '/v1/reports/supervision',
    tags: ['governance'],
    summary: 'Supervision report per institution and period (regulators; arts. 27–28): catalogue completeness, freshness, quality, sharing and disputes answered on time or late, refusals without legal basis, incidents — computed from the audit log, each number traceable to its leaves',
    security: bearerSecurity,
    request: {
      query: z.object({
        from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Start (default: 1 January of this year, China time)' }),
        to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'End, exclusive (default: now)' }),
        format: z.enum(['json', 'csv']).default('json'),
        evidence: z.enum(['true', 'false']).default('false').openapi({ description: 'With true (JSON only), every indicator lists the audit leaf indexes it counts' }),
      }),
    },
    responses: { 200: { description: 'The report', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) }, 'text/csv': { schema: z.string() } } }, ...errorResponses(400, 403) },
  }),
};

export function sharingRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(routes.fileExternal, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'external:file', platformEntity);
    return c.json(toExternalRequestView(await fileExternalRequest(platform, principal, c.req.valid('json'))), 201);
  });

  app.openapi(routes.listExternal, async (c) => {
    await platform.authorizer.require(c.get('principal'), 'external:list', platformEntity);
    return c.json({ requests: (await listExternalRequests(platform)).map(toExternalRequestView) }, 200);
  });

  app.openapi(routes.decideExternal, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'external:decide', platformEntity);
    return c.json(toExternalRequestView(await decideExternalRequest(platform, principal, c.req.valid('param').id, c.req.valid('json'))), 200);
  });

  app.openapi(routes.deliverExternal, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'external:deliver', platformEntity);
    const { dataset, spreadsheet } = c.req.valid('query');
    const delivery = await deliverExternalRequest(platform, principal, c.req.valid('param').id, dataset, { forSpreadsheet: spreadsheet === 'true' });
    return sharedCsvResponse(c, delivery, 'external.csv');
  });

  app.openapi(routes.create, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'sharing:request', platformEntity);
    return c.json(toSharingView(await requestSharing(platform, principal, c.req.valid('json')), platform.clock()), 201);
  });
  app.openapi(routes.list, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'sharing:list', platformEntity);
    const views = (await listSharing(platform, principal)).map((row) => toSharingView(row, platform.clock()));
    const overdue = c.req.valid('query').overdue;
    return c.json({ requests: overdue === undefined ? views : views.filter((view) => view.overdue === (overdue === 'true')) }, 200);
  });
  app.openapi(routes.decide, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'sharing:decide', platformEntity);
    return c.json(toSharingView(await decideSharing(platform, principal, c.req.valid('param').id, c.req.valid('json')), platform.clock()), 200);
  });
  app.openapi(routes.supervision, async (c) => {
    await platform.authorizer.require(c.get('principal'), 'report:supervision', platformEntity);
    const query = c.req.valid('query');
    const now = platform.clock();
    const { from, to } = requestedPeriod(query, now, () => chinaYearStart(now));
    // Settle what time alone changes (idle channels, passed deadlines) so the log the report reads is current.
    await sweepGovernance(platform);
    const report = await supervisionReport(platform.db, { from, to }, now, { evidence: query.evidence === 'true' });
    if (query.format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header('Content-Disposition', 'attachment; filename="supervision.csv"');
      return c.body(toCsv([...supervisionColumns], report.institutions.map((row) => supervisionColumns.map((column) => row[column]))), 200);
    }
    return c.json(report, 200);
  });
  return app;
}
