import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { AppError } from '../../errors/app-error.js';
import { createPrincipal, findPrincipal, principalCreationSchema } from '../../identity/principals.js';
import { findOperator } from '../../licensing/licences.js';
import { mintToken } from '../../identity/tokens.js';
import { institutions } from '../../db/schema.js';
import { eq } from 'drizzle-orm';
import { decodeJwt } from 'jose';
import { recordAuditEvents } from '../../audit/audit-log.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const principalSchema = z
  .object({
    id: z.string(),
    role: z.enum(['operator', 'regulator', 'institution', 'consumer', 'admin']),
    displayName: z.string(),
    operatorId: z.string().nullable(),
    institutionId: z.string().nullable(),
    status: z.enum(['active', 'disabled']),
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

const principalView = (p: NonNullable<Awaited<ReturnType<typeof findPrincipal>>>) => ({
  id: p.id,
  role: p.role,
  displayName: p.displayName,
  operatorId: p.operatorId,
  institutionId: p.institutionId,
  status: p.status,
});

export function identityRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { db, authorizer, config } = platform;

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

  app.openapi(routes.whoAmI, (c) => c.json(principalView(c.get('principal')), 200));

  app.openapi(routes.mintToken, async (c) => {
    await authorizer.require(c.get('principal'), 'token:mint', platformEntity);
    const { principalId, ttlSeconds } = c.req.valid('json');
    const subject = await findPrincipal(db, principalId);
    if (!subject) throw new AppError('NOT_FOUND', 'principal not found');
    const now = platform.clock();
    const token = await mintToken(
      platform.keys,
      { issuer: config.tokenIssuer, audience: config.tokenAudience, maxAgeSeconds: config.tokenMaxAgeSeconds },
      subject.id,
      { ...(ttlSeconds ? { ttlSeconds } : {}), now },
    );
    // A token lets its holder act as the subject: who minted it for whom, and until when, is for regulators to see.
    // The token id (jti) names it; the token itself is never logged.
    const { jti, exp } = decodeJwt(token);
    await recordAuditEvents(db, [{ type: 'token.minted', actor: c.get('principal').id, operator: subject.operatorId, details: { subject: subject.id, role: subject.role, tokenId: jti, expiresAt: new Date(exp! * 1000).toISOString() } }], now);
    return c.json({ token, principalId: subject.id }, 201);
  });

  return app;
}
