import { sweepGovernance } from '../../governance/deadline-alerts.js';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { desc, eq } from 'drizzle-orm';
import { platformEntity } from '../../authz/entities.js';
import { incidents } from '../../db/schema.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses } from '../openapi-common.js';

const incidentSchema = z
  .object({ id: z.string(), kind: z.string(), operatorId: z.string().nullable(), principalId: z.string().nullable(), jobId: z.string().nullable(), detail: z.record(z.string(), z.unknown()), createdAt: z.string() })
  .openapi('Incident');

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
        limit: z.coerce.number().int().min(1).max(1000).default(200),
      }),
    },
    responses: { 200: { description: 'Incidents', content: { 'application/json': { schema: z.object({ incidents: z.array(incidentSchema) }) } } }, ...errorResponses(400, 403) },
  }),
};

export function incidentRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(routes.list, async (c) => {
    await platform.authorizer.require(c.get('principal'), 'incident:list', platformEntity);
    const { kind, limit } = c.req.valid('query');
    // Deadlines that passed since the last sweep raise their alerts before regulators read the list.
    await sweepGovernance(platform);
    const rows = await platform.db
      .select()
      .from(incidents)
      .where(kind ? eq(incidents.kind, kind) : undefined)
      .orderBy(desc(incidents.createdAt))
      .limit(limit);
    return c.json({ incidents: rows.map((row) => ({ ...row, createdAt: row.createdAt.toISOString() })) }, 200);
  });
  return app;
}
