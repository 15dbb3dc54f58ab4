import { sweepGovernance } from '../../governance/deadline-alerts.js';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, desc, eq, isNotNull, isNull } from 'drizzle-orm';
import { platformEntity } from '../../authz/entities.js';
import { incidents } from '../../db/schema.js';
import { correctIncidentFinding, incidentOutcomes, incidentResolutionSchema, resolveIncident } from '../../governance/incidents.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses } from '../openapi-common.js';

const incidentSchema = z
  .object({
    id: z.string(),
    kind: z.string(),
    operatorId: z.string().nullable(),
    principalId: z.string().nullable(),
    jobId: z.string().nullable(),
    detail: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    resolution: z
      .object({
        outcome: z.enum(incidentOutcomes),
        reason: z.string(),
        resolvedBy: z.string(),
        resolvedAt: z.string(),
        earlierFindings: z
          .array(z.object({ outcome: z.enum(incidentOutcomes), reason: z.string(), resolvedBy: z.string(), resolvedAt: z.string(), correctedBy: z.string(), correctedAt: z.string() }))
          .openapi({ description: 'Findings later corrected, oldest first, each with who corrected it and when' }),
      })
      .nullable()
      .openapi({ description: "A regulator's finding in force; null while the incident is open" }),
  })
  .openapi('Incident');

const toIncidentView = (row: typeof incidents.$inferSelect) => ({
  id: row.id,
  kind: row.kind,
  operatorId: row.operatorId,
  principalId: row.principalId,
  jobId: row.jobId,
  detail: row.detail,
  createdAt: row.createdAt.toISOString(),
  resolution: row.resolvedAt
    ? { outcome: row.outcome!, reason: row.outcomeReason ?? '', resolvedBy: row.resolvedBy ?? '', resolvedAt: row.resolvedAt.toISOString(), earlierFindings: row.earlierFindings }
    : null,
});

/** A finding sent about one incident: its id in the path, the outcome and reason in the body. */
const findingRequest = (example: z.infer<typeof incidentResolutionSchema>) => ({
  params: z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) }),
  body: { required: true, content: { 'application/json': { schema: incidentResolutionSchema, example } } },
});

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/incidents',
    tags: ['audit'],
    summary: 'Incidents for regulators: use beyond a licence (over_scope), product probing and enumeration, outputs withheld as differencing, channel misuse and overdue deadlines; newest first',
    security: bearerSecurity,
    request: {
      query: z.object({
        kind: z.enum(incidents.kind.enumValues).optional(),
        status: z.enum(['open', 'resolved']).optional().openapi({ description: 'Only open incidents, or only resolved ones' }),
        limit: z.coerce.number().int().min(1).max(1000).default(200),
      }),
    },
    responses: { 200: { description: 'Incidents', content: { 'application/json': { schema: z.object({ incidents: z.array(incidentSchema) }) } } }, ...errorResponses(400, 403) },
  }),
  resolve: createRoute({
    method: 'post',
    path: '/v1/incidents/{id}/resolution',
    tags: ['audit'],
    summary: 'Record what a regulator found and did about an incident (regulators; once per incident; audited as incident.resolved)',
    security: bearerSecurity,
    request: findingRequest({ outcome: 'operator_warned', reason: '已约谈运营机构，确认为误操作，要求整改' }),
    responses: { 200: { description: 'The incident with its resolution', content: { 'application/json': { schema: incidentSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  correct: createRoute({
    method: 'post',
    path: '/v1/incidents/{id}/resolution/correction',
    tags: ['audit'],
    summary:
      'Correct a finding found wrong later (regulators): the new finding stands, the earlier one is kept in earlierFindings, and both stay in the audit log (incident.finding-corrected)',
    security: bearerSecurity,
    request: findingRequest({ outcome: 'licence_action', reason: '运营机构的说明经核实不实，已暂停其许可' }),
    responses: { 200: { description: 'The incident with the corrected finding', content: { 'application/json': { schema: incidentSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
};

export function incidentRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(routes.list, async (c) => {
    await platform.authorizer.require(c.get('principal'), 'incident:list', platformEntity);
    const { kind, status, limit } = c.req.valid('query');
    // Deadlines that passed since the last sweep raise their alerts before regulators read the list.
    await sweepGovernance(platform);
    const conditions = [kind ? eq(incidents.kind, kind) : undefined, status === 'open' ? isNull(incidents.resolvedAt) : status === 'resolved' ? isNotNull(incidents.resolvedAt) : undefined];
    const rows = await platform.db
      .select()
      .from(incidents)
      .where(and(...conditions))
      .orderBy(desc(incidents.createdAt))
      .limit(limit);
    return c.json({ incidents: rows.map(toIncidentView) }, 200);
  });
  app.openapi(routes.resolve, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'incident:resolve', platformEntity);
    const row = await resolveIncident(platform.db, principal, c.req.valid('param').id, c.req.valid('json'), platform.clock());
    return c.json(toIncidentView(row), 200);
  });
  app.openapi(routes.correct, async (c) => {
    const principal = c.get('principal');
    // The same power as recording a finding: a regulator's, never an assessor's or an operator's.
    await platform.authorizer.require(principal, 'incident:resolve', platformEntity);
    const row = await correctIncidentFinding(platform.db, principal, c.req.valid('param').id, c.req.valid('json'), platform.clock());
    return c.json(toIncidentView(row), 200);
  });
  return app;
}
