import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { licenceEntity, operatorEntity, platformEntity } from '../../authz/entities.js';
import { notFound } from '../../errors/app-error.js';
import {
  changeLicenceStatus,
  changeOperatorStatus,
  createLicence,
  createOperator,
  findLicence,
  findOperator,
  licenceCreationSchema,
  listLicences,
  listOperators,
  operatorCreationSchema,
  standingChangeSchema,
  toLicenceView,
  type OperatorRow,
} from '../../licensing/licences.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, idempotencyKeyHeader, jsonBody } from '../openapi-common.js';

const operatorSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    nameZh: z.string().nullable(),
    creditCode: z.string().nullable(),
    status: z.enum(['active', 'suspended', 'revoked']),
    statusReason: z.string().nullable(),
    createdAt: z.string(),
  })
  .openapi('Operator');

const licenceSchema = z
  .object({
    id: z.string(),
    operatorId: z.string(),
    title: z.string(),
    scope: z.array(z.object({ dataset: z.string(), columns: z.array(z.string()).optional() })),
    purposes: z.array(z.enum(['public_interest', 'industry'])),
    maxGrade: z.enum(['L1', 'L2', 'L3', 'L4', 'important']),
    validFrom: z.string(),
    validUntil: z.string(),
    feeMode: z.enum(['free', 'capped_fee']),
    status: z.enum(['active', 'suspended', 'revoked']),
    statusReason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Licence');

const idParam = (name: string) => z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' }, description: name }) });

const operatorView = (operator: OperatorRow) => ({
  id: operator.id,
  name: operator.name,
  nameZh: operator.nameZh,
  creditCode: operator.creditCode,
  status: operator.status,
  statusReason: operator.statusReason,
  createdAt: operator.createdAt.toISOString(),
});

const routes = {
  createOperator: createRoute({
    method: 'post',
    path: '/v1/operators',
    tags: ['licensing'],
    summary: 'Create a licensed operator (regulators)',
    security: bearerSecurity,
    request: { body: jsonBody(operatorCreationSchema, 'The operator') },
    responses: { 201: { description: 'Created', content: { 'application/json': { schema: operatorSchema } } }, ...errorResponses(400, 403, 409) },
  }),
  listOperators: createRoute({
    method: 'get',
    path: '/v1/operators',
    tags: ['licensing'],
    summary: 'List operators (regulators)',
    security: bearerSecurity,
    responses: { 200: { description: 'Operators', content: { 'application/json': { schema: z.object({ operators: z.array(operatorSchema) }) } } }, ...errorResponses(403) },
  }),
  getOperator: createRoute({
    method: 'get',
    path: '/v1/operators/{id}',
    tags: ['licensing'],
    summary: 'One operator (regulators, or its own users)',
    security: bearerSecurity,
    request: { params: idParam('operator id') },
    responses: { 200: { description: 'The operator', content: { 'application/json': { schema: operatorSchema } } }, ...errorResponses(403, 404) },
  }),
  changeOperatorStatus: createRoute({
    method: 'post',
    path: '/v1/operators/{id}/status',
    tags: ['licensing'],
    summary: 'Suspend, reinstate or revoke an operator as a whole (regulators); effective on the next request',
    description:
      "While an operator is suspended or revoked none of its licences is in force: its users are refused (LICENCE_INACTIVE), its queued jobs fail, its held outputs are not released and its products do not answer. Its licences keep their own statuses, so reinstating the operator restores what it held. Each change is recorded in the audit log with its reason (`operator.suspended`, `operator.reinstated`, `operator.revoked`); asking for the status the operator already has changes and records nothing. Revocation is final.",
    security: bearerSecurity,
    request: { params: idParam('operator id'), body: jsonBody(standingChangeSchema, 'The new status and why') },
    responses: { 200: { description: 'The operator', content: { 'application/json': { schema: operatorSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  createLicence: createRoute({
    method: 'post',
    path: '/v1/operators/{id}/licences',
    tags: ['licensing'],
    summary: 'Grant a licence to an operator (regulators)',
    description:
      'The grant is recorded in the audit log (`licence.granted`). Send an `Idempotency-Key` header (1–200 visible ASCII characters, new for each grant) to retry safely: the same key with the same operator and body answers with the licence it first granted (header `Idempotent-Replayed: true`) instead of granting a second; the same key with another grant is refused with IDEMPOTENCY_KEY_REUSED.',
    security: bearerSecurity,
    request: { params: idParam('operator id'), headers: idempotencyKeyHeader, body: jsonBody(licenceCreationSchema, 'The licence') },
    responses: {
      201: { description: 'Granted (or, for a repeated Idempotency-Key, the licence that key granted)', content: { 'application/json': { schema: licenceSchema } } },
      ...errorResponses(400, 403, 404, 422),
    },
  }),
  listLicences: createRoute({
    method: 'get',
    path: '/v1/licences',
    tags: ['licensing'],
    summary: "List licences (regulators: all; operator users: their operator's)",
    security: bearerSecurity,
    responses: { 200: { description: 'Licences', content: { 'application/json': { schema: z.object({ licences: z.array(licenceSchema) }) } } }, ...errorResponses(403) },
  }),
  getLicence: createRoute({
    method: 'get',
    path: '/v1/licences/{id}',
    tags: ['licensing'],
    summary: 'One licence',
    security: bearerSecurity,
    request: { params: idParam('licence id') },
    responses: { 200: { description: 'The licence', content: { 'application/json': { schema: licenceSchema } } }, ...errorResponses(403, 404) },
  }),
  changeLicenceStatus: createRoute({
    method: 'post',
    path: '/v1/licences/{id}/status',
    tags: ['licensing'],
    summary: 'Suspend, reinstate or revoke a licence (regulators); effective on the next request',
    description:
      'Each change is recorded in the audit log with its reason (`licence.suspended`, `licence.reinstated`, `licence.revoked`). Asking for the status the licence already has changes and records nothing, so a retried request is safe. Revocation is final.',
    security: bearerSecurity,
    request: { params: idParam('licence id'), body: jsonBody(standingChangeSchema, 'The new status and why') },
    responses: { 200: { description: 'The licence', content: { 'application/json': { schema: licenceSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
};

export function licensingRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { db, authorizer } = platform;

  app.openapi(routes.createOperator, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'operator:create', platformEntity);
    return c.json(operatorView(await createOperator(db, c.req.valid('json'), principal.id, platform.clock())), 201);
  });

  app.openapi(routes.listOperators, async (c) => {
    await authorizer.require(c.get('principal'), 'operator:list', platformEntity);
    return c.json({ operators: (await listOperators(db)).map(operatorView) }, 200);
  });

  app.openapi(routes.getOperator, async (c) => {
    const operator = await findOperator(db, c.req.valid('param').id);
    if (!operator) throw notFound('operator');
    await authorizer.require(c.get('principal'), 'operator:read', operatorEntity(operator), { hideExistence: true });
    return c.json(operatorView(operator), 200);
  });

  app.openapi(routes.changeOperatorStatus, async (c) => {
    const operator = await findOperator(db, c.req.valid('param').id);
    if (!operator) throw notFound('operator');
    await authorizer.require(c.get('principal'), 'operator:read', operatorEntity(operator), { hideExistence: true });
    await authorizer.require(c.get('principal'), 'operator:change-status', operatorEntity(operator));
    return c.json(operatorView(await changeOperatorStatus(db, operator.id, c.req.valid('json'), c.get('principal').id, platform.clock())), 200);
  });

  app.openapi(routes.createLicence, async (c) => {
    const principal = c.get('principal');
    const operator = await findOperator(db, c.req.valid('param').id);
    if (!operator) throw notFound('operator');
    await authorizer.require(principal, 'licence:create', operatorEntity(operator));
    const { licence, replayed } = await createLicence(db, operator.id, c.req.valid('json'), principal.id, {
      idempotencyKey: c.req.valid('header')['idempotency-key'],
      now: platform.clock(),
    });
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return c.json(toLicenceView(licence), 201);
  });

  app.openapi(routes.listLicences, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'licence:list', platformEntity);
    // Who may list is Cedar's decision (L1, L4, A1); an operator's list holds its own operator's licences only.
    const own = principal.role === 'operator' ? (principal.operatorId ?? '') : undefined;
    return c.json({ licences: (await listLicences(db, own)).map(toLicenceView) }, 200);
  });

  app.openapi(routes.getLicence, async (c) => {
    const licence = await findLicence(db, c.req.valid('param').id);
    if (!licence) throw notFound('licence');
    await authorizer.require(c.get('principal'), 'licence:read', licenceEntity(licence), { hideExistence: true });
    return c.json(toLicenceView(licence), 200);
  });

  app.openapi(routes.changeLicenceStatus, async (c) => {
    const licence = await findLicence(db, c.req.valid('param').id);
    if (!licence) throw notFound('licence');
    // Someone who may not even see the licence learns nothing of it (404); someone who may see it learns why (403).
    await authorizer.require(c.get('principal'), 'licence:read', licenceEntity(licence), { hideExistence: true });
    await authorizer.require(c.get('principal'), 'licence:change-status', licenceEntity(licence));
    return c.json(toLicenceView(await changeLicenceStatus(db, licence.id, c.req.valid('json'), c.get('principal').id, platform.clock())), 200);
  });

  return app;
}
