import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { asc, eq } from 'drizzle-orm';
import { platformEntity } from '../../authz/entities.js';
import { findDataset } from '../../catalog/catalogue.js';
import { licences, privacyBudgets } from '../../db/schema.js';
import { AppError, notFound } from '../../errors/app-error.js';
import { findLicence } from '../../licensing/licences.js';
import type { Platform } from '../../platform.js';
import { deltaSchema, resetBudget, setBudgetCap, toBudgetView } from '../../privacy/budget-ledger.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const budgetSchema = z
  .object({
    id: z.string(),
    licenceId: z.string(),
    datasetId: z.string(),
    epsilonCap: z.number(),
    epsilonSpent: z.number(),
    epsilonRemaining: z.number(),
    deltaCap: z.number(),
    deltaSpent: z.number(),
    updatedAt: z.string(),
  })
  .openapi('PrivacyBudget');

const capSchema = z.strictObject({
  licenceId: z.string().min(1).max(100),
  datasetId: z.string().min(1).max(63),
  // A total cap may exceed what one job may spend (epsilonSchema caps that at 10).
  epsilonCap: z.number().finite().min(0.001).max(100),
  deltaCap: deltaSchema.optional(),
  // Recorded in the audit leaf with the cap it replaces, as a reset's reason is.
  reason: z.string().trim().min(1).max(2000),
});

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/budgets',
    tags: ['privacy'],
    summary: "Privacy budgets: spent and remaining ε (and δ) per licence and dataset (operators: their own; regulators: all)",
    security: bearerSecurity,
    responses: { 200: { description: 'Budgets', content: { 'application/json': { schema: z.object({ budgets: z.array(budgetSchema) }) } } }, ...errorResponses(403) },
  }),
  setCap: createRoute({
    method: 'post',
    path: '/v1/budgets',
    tags: ['privacy'],
    summary: 'Set the ε (and δ) cap of a licence on a dataset (regulators; audited with the reason and the cap it replaces)',
    description:
      'A cap below what is already spent stops further differentially private jobs (nothing is taken back). Refused with DATASET_NOT_IN_LICENCE when the licence does not cover the dataset.',
    security: bearerSecurity,
    request: { body: jsonBody(capSchema, 'The cap') },
    responses: { 200: { description: 'The budget', content: { 'application/json': { schema: budgetSchema } } }, ...errorResponses(400, 403, 404, 409) },
  }),
  reset: createRoute({
    method: 'post',
    path: '/v1/budgets/{id}/reset',
    tags: ['privacy'],
    summary: 'Reset what a budget has spent (regulators; audited with the reason)',
    security: bearerSecurity,
    request: {
      params: z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) }),
      body: jsonBody(z.strictObject({ reason: z.string().min(1).max(2000) }), 'Why'),
    },
    responses: { 200: { description: 'The budget', content: { 'application/json': { schema: budgetSchema } } }, ...errorResponses(400, 403, 404) },
  }),
};

export function budgetRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { authorizer, db } = platform;

  app.openapi(routes.list, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'budget:list', platformEntity);
    const rows =
      principal.role === 'regulator'
        ? await db.select().from(privacyBudgets).orderBy(asc(privacyBudgets.licenceId), asc(privacyBudgets.datasetId))
        : (
            await db
              .select({ budget: privacyBudgets })
              .from(privacyBudgets)
              .innerJoin(licences, eq(licences.id, privacyBudgets.licenceId))
              .where(eq(licences.operatorId, principal.operatorId ?? '-'))
              .orderBy(asc(privacyBudgets.licenceId), asc(privacyBudgets.datasetId))
          ).map((row) => row.budget);
    return c.json({ budgets: rows.map(toBudgetView) }, 200);
  });

  app.openapi(routes.setCap, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'budget:set', platformEntity);
    const input = c.req.valid('json');
    const licence = await findLicence(db, input.licenceId);
    if (!licence) throw notFound('licence');
    if (!(await findDataset(db, input.datasetId))) throw notFound('dataset');
    // A budget no job of this licence could spend would only mislead whoever reads the list.
    if (!licence.scope.some((entry) => entry.dataset === input.datasetId)) {
      throw new AppError('DATASET_NOT_IN_LICENCE', `licence ${licence.id} does not cover ${input.datasetId}: grant the dataset in a licence first`);
    }
    return c.json(toBudgetView(await setBudgetCap(db, input, principal.id, platform.clock())), 200);
  });

  app.openapi(routes.reset, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'budget:set', platformEntity);
    const reset = await resetBudget(db, c.req.valid('param').id, c.req.valid('json').reason, principal.id, platform.clock());
    if (!reset) throw notFound('budget');
    return c.json(toBudgetView(reset), 200);
  });

  return app;
}
