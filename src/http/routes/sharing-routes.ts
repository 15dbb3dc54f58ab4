import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { decideSharing, listSharing, requestSharing, sharingDecisionSchema, sharingRequestSchema, toSharingView } from '../../governance/sharing-requests.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const requestView = z.record(z.string(), z.unknown()).openapi('SharingRequest');
const idParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });

const routes = {
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
};

export function sharingRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(routes.create, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'sharing:request', platformEntity);
    return c.json(toSharingView(await requestSharing(platform, platform.calendar, principal, c.req.valid('json')), platform.clock()), 201);
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
  return app;
}
