import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { AppError } from '../../errors/app-error.js';
import { changePrincipalStatus, createPrincipal, listPrincipals, principalCreationSchema, principalStatusChangeSchema, type PrincipalRow } from '../../identity/principals.js';
import { findOperator } from '../../licensing/licences.js';
import { issueToken } from '../../identity/issue-token.js';
import { institutions, principalRoles } from '../../db/schema.js';
import { eq } from 'drizzle-orm';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const principalSchema = z
  .object({
    id: z.string(),
    role: z.enum(principalRoles),
    displayName: z.string(),
    operatorId: z.string().nullable(),
    institutionId: z.string().nullable(),
    status: z.enum(['active', 'disabled']),
    statusReason: z.string().nullable(),
  })
  .openapi('Principal');

const tokenRequestSchema = z.strictObject({
  principalId: z.string().min(1).max(100),
  ttlSeconds: z.number().int().min(60).max(30 * 24 * 3600).optional(),
});

const routes = {
  createPrincipal: createRoute({
    method: 'post',
    path: '/v1/principals',
    tags: ['identity'],
    summary: 'Create a principal (admins)',
    security: bearerSecurity,
    request: { body: jsonBody(principalCreationSchema, 'The principal') },
    responses: { 201: { description: 'Created', content: { 'application/json': { schema: principalSchema } } }, ...errorResponses(400, 403, 409) },
  }),
  listPrincipals: createRoute({
    method: 'get',
    path: '/v1/principals',
    tags: ['identity'],
    summary: 'List principals with their status (admins and regulators)',
    security: bearerSecurity,
    responses: { 200: { description: 'Principals', content: { 'application/json': { schema: z.object({ principals: z.array(principalSchema) }) } } }, ...errorResponses(403) },
  }),
  changePrincipalStatus: createRoute({
    method: 'post',
    path: '/v1/principals/{id}/status',
    tags: ['identity'],
    summary: 'Disable or enable an account (admins); effective on the next request',
    description:
      'Disabling refuses the account at once and revokes every token issued until then, for good: enabled again, the holder needs a new token (TOKEN_REVOKED otherwise). Each change is recorded in the audit log with its reason (`principal.disabled`, `principal.enabled`); asking for the status the account already has changes and records nothing. Nobody disables their own account (SELF_DISABLE).',
    security: bearerSecurity,
    request: {
      params: z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' }, description: 'principal id' }) }),
      body: jsonBody(principalStatusChangeSchema, 'The new status and why'),
    },
    responses: { 200: { description: 'The principal', content: { 'application/json': { schema: principalSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  whoAmI: createRoute({
    method: 'get',
    path: '/v1/me',
    tags: ['identity'],
    summary: 'The principal behind the bearer token',
    security: bearerSecurity,
    responses: { 200: { description: 'The principal', content: { 'application/json': { schema: principalSchema } } }, ...errorResponses() },
  }),
  mintToken: createRoute({
    method: 'post',
    path: '/v1/tokens',
    tags: ['identity'],
    summary: 'Mint an access token for an existing principal (admins)',
    security: bearerSecurity,
    request: { body: jsonBody(tokenRequestSchema, 'Whose token, and for how long (capped at the maximum token age)') },
    responses: {
      201: { description: 'The token', content: { 'application/json': { schema: z.object({ token: z.string(), principalId: z.string() }) } } },
      ...errorResponses(400, 403, 404),
    },
  }),
};

const principalView = (p: PrincipalRow) => ({
  id: p.id,
  role: p.role,
  displayName: p.displayName,
  operatorId: p.operatorId,
  institutionId: p.institutionId,
  status: p.status,
  statusReason: p.statusReason,
});

export function identityRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { db, authorizer } = platform;

  app.openapi(routes.createPrincipal, async (c) => {
    await authorizer.require(c.get('principal'), 'principal:create', platformEntity);
    const input = c.req.valid('json');
    if (input.operatorId && !(await findOperator(db, input.operatorId))) {
      throw new AppError('VALIDATION_FAILED', 'the operator does not exist', [{ path: 'operatorId', problem: 'unknown operator' }]);
    }
    if (input.institutionId) {
      const [institution] = await db.select().from(institutions).where(eq(institutions.id, input.institutionId));
      if (!institution) throw new AppError('VALIDATION_FAILED', 'the institution does not exist', [{ path: 'institutionId', problem: 'unknown institution' }]);
    }
    return c.json(principalView(await createPrincipal(db, input, c.get('principal').id, platform.clock())), 201);
  });

  app.openapi(routes.listPrincipals, async (c) => {
    await authorizer.require(c.get('principal'), 'principal:list', platformEntity);
    return c.json({ principals: (await listPrincipals(db)).map(principalView) }, 200);
  });

  app.openapi(routes.changePrincipalStatus, async (c) => {
    await authorizer.require(c.get('principal'), 'principal:change-status', platformEntity);
    return c.json(principalView(await changePrincipalStatus(db, c.req.valid('param').id, c.req.valid('json'), c.get('principal').id, platform.clock())), 200);
  });

  app.openapi(routes.whoAmI, (c) => c.json(principalView(c.get('principal')), 200));

  app.openapi(routes.mintToken, async (c) => {
    await authorizer.require(c.get('principal'), 'token:mint', platformEntity);
    const { principalId, ttlSeconds } = c.req.valid('json');
    const token = await issueToken(platform, principalId, c.get('principal').id, ttlSeconds);
    return c.json({ token, principalId }, 201);
  });

  return app;
}
