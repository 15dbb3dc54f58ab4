import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { platformEntity } from '../../authz/entities.js';
import { notFound } from '../../errors/app-error.js';
import { findPrincipal } from '../../identity/principals.js';
import type { Platform } from '../../platform.js';
import { encryptedScoringSchema, encryptedVerificationSchema, plainScoringSchema, plainVerificationSchema } from '../../products/product-service.js';
import { heKeyRegistrationSchema, toHeKeyView } from '../../products/he-keys.js';
import { productDefinitionSchema } from '../../products/product-spec.js';
import {
  decideProduct,
  defineProduct,
  listProducts,
  productDecisionSchema,
  productEntity,
  productFor,
  productPublicationSchema,
  publishProduct,
  toProductView,
} from '../../products/products.js';
import { annualProductReport, usageFor } from '../../products/usage.js';
import { answerSubjectAccess, subjectAccessSchema } from '../../products/subject-access.js';
import { quotaStandings } from '../../products/shared-quotas.js';
import { consumersWithStanding, findPublicInterestGrant, grantPublicInterest, publicInterestGrantSchema, publicInterestView, revokePublicInterest } from '../../products/public-interest.js';
import { toCsv } from '../csv.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, idempotencyKeyHeader, jsonBody, requestedPeriod, thirtyDaysBefore } from '../openapi-common.js';
import type { RetryKey } from '../../products/call-replays.js';

const RETRY_NOTE =
  'Send an `Idempotency-Key` header (1–200 visible ASCII characters, new for each call) to retry a call whose answer was lost: the same key and body within a day answer with the first call\'s signed answer (header `Idempotent-Replayed: true`), metered, charged and counted against the subject once, whichever API process the retry reaches and across restarts; the same key with another body is IDEMPOTENCY_KEY_REUSED.';

const productId = z.object({ id: z.string().min(1).max(63).openapi({ param: { name: 'id', in: 'path' }, example: 'resident-identity' }) });
const productSchema = z.record(z.string(), z.unknown()).openapi('Product');
const consumerParam = z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) });
const publicInterestGrantView = z
  .object({ consumerId: z.string(), basis: z.string(), grantedBy: z.string(), grantedAt: z.string(), validUntil: z.string(), revokedAt: z.string().nullable(), inForce: z.boolean() })
  .openapi('PublicInterestGrant');
const quotaStandingView = z
  .object({
    day: z.string().openapi({ description: 'China date the daily counts are for' }),
    callsToday: z.number().int(),
    dailyCalls: z.number().int().openapi({ description: 'Calls a consumer may make a day (pricing.yaml)' }),
    ratePerSecond: z.number().openapi({ description: 'Calls per second, per API process' }),
    productCallsToday: z.record(z.string(), z.number().int()).openapi({ description: "Today's calls of each scoring product (each product's definition sets its daily limit)" }),
    month: z.string(),
    feesThisMonthFen: z.number().int(),
    monthlyCapFen: z.number().int(),
    throttledUntil: z.string().nullable().openapi({ description: 'Set while calls are paused after probing or enumeration was found' }),
  })
  .openapi('QuotaStanding');
const json = <T extends z.ZodType>(schema: T, description: string) => ({ description, content: { 'application/json': { schema } } });
const heKeyView = z.object({ id: z.string(), scheme: z.enum(['bfv', 'ckks']), sha256: z.string().openapi({ description: 'SHA-256 of the key\'s base64 text, as public_key_sha256 in a call\'s request hash' }), createdAt: z.string() }).openapi('HeKey');

const answerSchema = z
  .object({
    match: z.boolean(),
    jws: z.string().openapi({ description: 'Compact JWS (EdDSA, platform key in /.well-known/jwks.json, typ pds-answer+jws) over product, match, salted request hash, dataset version, time and audit leaf index' }),
    auditLeafIndex: z.number().int(),
    feeFen: z.number().int(),
  })
  .openapi('VerificationAnswer');

const routes = {
  list: createRoute({
    method: 'get',
    path: '/v1/products',
    tags: ['products'],
    summary: 'Products: published ones with input schema, example, price and terms (operators also see their own; regulators all)',
    security: bearerSecurity,
    responses: { 200: json(z.object({ products: z.array(productSchema) }), 'Products'), ...errorResponses(403) },
  }),
  define: createRoute({
    method: 'post',
    path: '/v1/products',
    tags: ['products'],
    summary: 'Define a verification product (checked against the licence and by the job analyser) or a scoring product over a released model job (operators; starts as a draft)',
    security: bearerSecurity,
    request: { body: jsonBody(productDefinitionSchema, 'The definition') },
    responses: { 201: json(productSchema, 'The draft product'), ...errorResponses(400, 403, 409, 422) },
  }),
  read: createRoute({
    method: 'get',
    path: '/v1/products/{id}',
    tags: ['products'],
    summary: 'One product',
    security: bearerSecurity,
    request: { params: productId },
    responses: { 200: json(productSchema, 'The product'), ...errorResponses(404) },
  }),
  decide: createRoute({
    method: 'post',
    path: '/v1/products/{id}/decision',
    tags: ['products'],
    summary: 'Approve, reject, suspend, reinstate or retire a product, with a reason (regulators; audited)',
    security: bearerSecurity,
    request: { params: productId, body: jsonBody(productDecisionSchema, 'The decision') },
    responses: { 200: json(productSchema, 'The product'), ...errorResponses(400, 403, 404, 409) },
  }),
  publish: createRoute({
    method: 'post',
    path: '/v1/products/{id}/publication',
    tags: ['products'],
    summary: 'Publish an approved product, or withdraw a published one (its operator; audited)',
    security: bearerSecurity,
    request: { params: productId, body: jsonBody(productPublicationSchema, 'publish or withdraw') },
    responses: { 200: json(productSchema, 'The product'), ...errorResponses(400, 404, 409) },
  }),
  verify: createRoute({
    method: 'post',
    path: '/v1/products/{id}/verify',
    tags: ['products'],
    summary: 'Verify a claim (consumers): yes/no, signed, metered and logged; the purpose of each call is recorded',
    security: bearerSecurity,
    description: RETRY_NOTE,
    request: {
      params: productId,
      headers: idempotencyKeyHeader,
      body: {
        required: true,
        description: 'Inputs, purpose and use',
        content: { 'application/json': { schema: plainVerificationSchema, example: { input: { id_number: '310115199001011232', name: '王伟' }, purpose: '开户实名核验', use: 'industry' } } },
      },
    },
    responses: { 200: json(answerSchema, 'The signed answer'), ...errorResponses(400, 404, 409, 422, 429) },
  }),
  heParams: createRoute({
    method: 'get',
    path: '/v1/products/{id}/he-params',
    tags: ['products'],
    summary: 'Encryption parameters, server-fixed at 128-bit security: BFV and the claim encoding for verification products, CKKS and the slot layout for scoring products',
    security: bearerSecurity,
    request: { params: productId },
    responses: { 200: json(z.record(z.string(), z.unknown()), 'Parameters'), ...errorResponses(400, 404) },
  }),
  verifyEncrypted: createRoute({
    method: 'post',
    path: '/v1/products/{id}/verify-encrypted',
    tags: ['products'],
    summary: 'Verify encrypted claims (consumers): the server never sees the claims and the consumer learns one bit',
    security: bearerSecurity,
    description: RETRY_NOTE,
    request: { params: productId, headers: idempotencyKeyHeader, body: jsonBody(encryptedVerificationSchema, 'Subject in clear; claims as a seeded BFV ciphertext; the public key') },
    responses: {
      200: json(z.object({ answer: z.string(), jws: z.string(), auditLeafIndex: z.number().int(), feeFen: z.number().int() }).openapi('EncryptedAnswer'), 'The encrypted answer (zstd-serialized SEAL ciphertext, base64) and a signature over its hash'),
      ...errorResponses(400, 404, 409, 413, 422, 429),
    },
  }),
  score: createRoute({
    method: 'post',
    path: '/v1/products/{id}/score',
    tags: ['products'],
    summary: 'Score features with a published model (consumers): the score, signed, metered and logged',
    security: bearerSecurity,
    description: RETRY_NOTE,
    request: { params: productId, headers: idempotencyKeyHeader, body: jsonBody(plainScoringSchema, 'Features by name, purpose and use') },
    responses: { 200: json(z.object({ score: z.number(), linearPredictor: z.number(), jws: z.string(), auditLeafIndex: z.number().int(), feeFen: z.number().int() }).openapi('ScoreAnswer'), 'The signed score'), ...errorResponses(400, 404, 422, 429) },
  }),
  scoreEncrypted: createRoute({
    method: 'post',
    path: '/v1/products/{id}/score-encrypted',
    tags: ['products'],
    summary: 'Score CKKS-encrypted features (consumers): the server never sees the features',
    security: bearerSecurity,
    description: RETRY_NOTE,
    request: { params: productId, headers: idempotencyKeyHeader, body: jsonBody(encryptedScoringSchema, 'Seeded CKKS ciphertext of the features and the public key') },
    responses: { 200: json(z.object({ answer: z.string(), jws: z.string(), auditLeafIndex: z.number().int(), feeFen: z.number().int() }).openapi('EncryptedScore'), 'The encrypted, masked products; sum slots 0..p after decrypting'), ...errorResponses(400, 404, 413, 422, 429) },
  }),
  registerKey: createRoute({
    method: 'post',
    path: '/v1/he-keys',
    tags: ['products'],
    summary: 'Register a public key for encrypted calls (consumers): later calls name it by keyId instead of sending ~320 KiB each time',
    description: 'The key is checked as an inline key is (seeded, exact size, loads under the server parameters of he-params) and again at every call. Registering the same key again answers the first registration (200). A key is usable by the consumer that registered it only.',
    security: bearerSecurity,
    request: { body: jsonBody(heKeyRegistrationSchema, 'The scheme and the seeded public key') },
    responses: { 201: json(heKeyView, 'Registered'), 200: json(heKeyView, 'Already registered by this consumer'), ...errorResponses(400, 403, 413) },
  }),
  keys: createRoute({
    method: 'get',
    path: '/v1/he-keys',
    tags: ['products'],
    summary: 'The caller\'s registered public keys (ids, schemes and hashes; not the keys)',
    security: bearerSecurity,
    responses: { 200: json(z.object({ keys: z.array(heKeyView) }), 'Keys, oldest first'), ...errorResponses(403) },
  }),
  usage: createRoute({
    method: 'get',
    path: '/v1/usage',
    tags: ['products'],
    summary: 'Metered calls and fees: consumers their own, operators their products’, regulators all',
    security: bearerSecurity,
    request: {
      query: z.object({
        from: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Start (default: 30 days ago)' }),
        to: z.iso.datetime({ offset: true }).optional().openapi({ description: 'End, exclusive (default: now)' }),
      }),
    },
    responses: { 200: json(z.object({ from: z.string(), to: z.string(), usage: z.array(z.record(z.string(), z.unknown())), totals: z.object({ calls: z.number(), feesFen: z.number() }) }), 'Usage'), ...errorResponses(400, 403) },
  }),
  subjectAccess: createRoute({
    method: 'post',
    path: '/v1/subject-access',
    tags: ['products'],
    summary: "Every check of one person or enterprise by any verification product: who, when, for what (the data centre, answering the subject's request)",
    description:
      'The subject is named by a verification product\'s subject inputs, validated as a call\'s are, and looked up by the keyed hash calls are metered under — across every product that keys subjects the same way. Lists product, consumer, time, use, stated purpose and mode of each check, newest first (at most 1,000; `total` counts all), never an answer. A POST so that the identifier stays out of URLs and access logs. Each answer is an audit leaf (`subject.access-answered`) with the request\'s reference, never the identifier.',
    security: bearerSecurity,
    request: { body: jsonBody(subjectAccessSchema, 'The product, the subject inputs and the request\'s reference') },
    responses: {
      200: json(z.object({ reference: z.string(), total: z.number().int(), auditIndex: z.number().int(), checks: z.array(z.record(z.string(), z.unknown())) }), 'The checks of the subject'),
      ...errorResponses(400, 403, 404),
    },
  }),
  listConsumers: createRoute({
    method: 'get',
    path: '/v1/consumers',
    tags: ['products'],
    summary: 'Consumers, their public-interest standing and where they stand against their quotas (regulators)',
    security: bearerSecurity,
    responses: {
      200: json(z.object({ consumers: z.array(z.object({ id: z.string(), displayName: z.string(), status: z.string(), publicInterest: publicInterestGrantView.nullable(), quota: quotaStandingView })) }), 'Consumers'),
      ...errorResponses(403),
    },
  }),
  grantPublicInterest: createRoute({
    method: 'put',
    path: '/v1/consumers/{id}/public-interest',
    tags: ['products'],
    summary: 'Grant a consumer public-interest standing (free calls under pricing.yaml) with its basis and end (regulators; audited)',
    security: bearerSecurity,
    request: { params: consumerParam, body: jsonBody(publicInterestGrantSchema, 'The grant') },
    responses: { 200: json(publicInterestGrantView, 'The grant'), ...errorResponses(400, 403, 404) },
  }),
  revokePublicInterest: createRoute({
    method: 'post',
    path: '/v1/consumers/{id}/public-interest/revoke',
    tags: ['products'],
    summary: "Revoke a consumer's public-interest standing (regulators; audited with the reason)",
    security: bearerSecurity,
    request: { params: consumerParam, body: jsonBody(z.strictObject({ reason: z.string().min(1).max(2000) }), 'Why') },
    responses: { 200: json(publicInterestGrantView, 'The revoked grant'), ...errorResponses(400, 403, 404, 409) },
  }),
  readPublicInterest: createRoute({
    method: 'get',
    path: '/v1/consumers/{id}/public-interest',
    tags: ['products'],
    summary: "A consumer's public-interest grant (regulators; the consumer itself)",
    security: bearerSecurity,
    request: { params: consumerParam },
    responses: { 200: json(publicInterestGrantView, 'The grant'), ...errorResponses(403, 404) },
  }),
  readQuota: createRoute({
    method: 'get',
    path: '/v1/consumers/{id}/quota',
    tags: ['products'],
    summary: "Where a consumer stands against its daily limit and monthly fee cap, and whether it is throttled, as recorded across every API process (regulators; the consumer itself)",
    security: bearerSecurity,
    request: { params: consumerParam },
    responses: { 200: json(quotaStandingView, 'The standing'), ...errorResponses(403, 404) },
  }),
  report: createRoute({
    method: 'get',
    path: '/v1/reports/products',
    tags: ['products'],
    summary: 'Annual disclosure report of products, calls and fees (regulators), as JSON or CSV',
    security: bearerSecurity,
    request: {
      query: z.object({
        year: z.coerce.number().int().min(2024).max(2100).openapi({ example: 2026 }),
        format: z.enum(['json', 'csv']).default('json'),
      }),
    },
    responses: { 200: { description: 'The report', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) }, 'text/csv': { schema: z.string() } } }, ...errorResponses(400, 403) },
  }),
};

export function productRoutes(platform: Platform) {
  /** A product call, answered once per Idempotency-Key (the product is in the path, so a key names one product's call). */
  const once = async <T>(c: Context<AppEnv>, consumerId: string, body: unknown, call: (retry?: RetryKey) => Promise<{ answer: T; replayed: boolean }>): Promise<T> => {
    const key = c.req.header('idempotency-key');
    if (key === undefined) return (await call()).answer;
    const { answer, replayed } = await platform.products.idempotentCalls.run(consumerId, key, { path: c.req.path, body }, call);
    if (replayed) c.header('Idempotent-Replayed', 'true');
    return answer;
  };

  const app = new OpenAPIHono<AppEnv>();
  const { authorizer } = platform;
  const view = (product: Parameters<typeof toProductView>[0]) => toProductView(product, platform.products.pricing);

  app.openapi(routes.list, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'product:list', platformEntity);
    return c.json({ products: (await listProducts(platform, principal)).map(view) }, 200);
  });

  app.openapi(routes.define, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'product:define', platformEntity);
    return c.json(view(await defineProduct(platform, principal, c.req.valid('json'))), 201);
  });

  app.openapi(routes.read, async (c) => {
    const principal = c.get('principal');
    return c.json(view(await productFor(platform, principal, c.req.valid('param').id, 'product:read')), 200);
  });

  app.openapi(routes.decide, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:read');
    await authorizer.require(principal, 'product:decide', productEntity(product));
    return c.json(view(await decideProduct(platform, principal, product, c.req.valid('json'))), 200);
  });

  app.openapi(routes.publish, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:publish');
    return c.json(view(await publishProduct(platform, principal, product, c.req.valid('json'))), 200);
  });

  app.openapi(routes.verify, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:call');
    const body = c.req.valid('json');
    return c.json(await once(c, principal.id, body, (retry) => platform.products.verifyPlain(principal, product, body, retry)), 200);
  });

  app.openapi(routes.heParams, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:read');
    return c.json(product.spec.kind === 'scoring' ? await platform.products.scoringHeParameters(product) : await platform.products.heParameters(product), 200);
  });

  app.openapi(routes.verifyEncrypted, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:call');
    const body = c.req.valid('json');
    return c.json(await once(c, principal.id, body, (retry) => platform.products.verifyEncrypted(principal, product, body, retry)), 200);
  });

  app.openapi(routes.score, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:call');
    const body = c.req.valid('json');
    return c.json(await once(c, principal.id, body, (retry) => platform.products.scorePlain(principal, product, body, retry)), 200);
  });

  app.openapi(routes.scoreEncrypted, async (c) => {
    const principal = c.get('principal');
    const product = await productFor(platform, principal, c.req.valid('param').id, 'product:call');
    const body = c.req.valid('json');
    return c.json(await once(c, principal.id, body, (retry) => platform.products.scoreEncrypted(principal, product, body, retry)), 200);
  });

  app.openapi(routes.registerKey, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'he-key:register', platformEntity);
    const { row, created } = await platform.products.heKeys.register(principal, c.req.valid('json'));
    return created ? c.json(toHeKeyView(row), 201) : c.json(toHeKeyView(row), 200);
  });

  app.openapi(routes.keys, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'he-key:register', platformEntity);
    return c.json({ keys: (await platform.products.heKeys.list(principal)).map(toHeKeyView) }, 200);
  });

  app.openapi(routes.usage, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'usage:read', platformEntity);
    const query = c.req.valid('query');
    // By default up to and including this instant (`to` is exclusive).
    const { from, to } = requestedPeriod(query, platform.clock(), thirtyDaysBefore);
    const usage = await usageFor(platform.db, principal, { from, to });
    const totals = { calls: usage.reduce((sum, row) => sum + row.calls, 0), feesFen: usage.reduce((sum, row) => sum + row.feesFen, 0) };
    return c.json({ from: from.toISOString(), to: to.toISOString(), usage, totals }, 200);
  });

  app.openapi(routes.subjectAccess, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'subject:access', platformEntity);
    return c.json(await answerSubjectAccess(platform, principal, c.req.valid('json')), 200);
  });

  app.openapi(routes.listConsumers, async (c) => {
    await authorizer.require(c.get('principal'), 'consumer:grant-public-interest', platformEntity);
    const now = platform.clock();
    const consumers = await consumersWithStanding(platform.db, now);
    const standings = await quotaStandings(platform.db, platform.products.pricing, now, consumers.map((consumer) => consumer.id));
    return c.json({ consumers: consumers.map((consumer) => ({ ...consumer, quota: standings.get(consumer.id)! })) }, 200);
  });

  app.openapi(routes.grantPublicInterest, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'consumer:grant-public-interest', platformEntity);
    const now = platform.clock();
    const grant = await grantPublicInterest(platform.db, c.req.valid('param').id, c.req.valid('json'), principal.id, now);
    return c.json(publicInterestView(grant, now), 200);
  });

  app.openapi(routes.revokePublicInterest, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'consumer:grant-public-interest', platformEntity);
    const now = platform.clock();
    const grant = await revokePublicInterest(platform.db, c.req.valid('param').id, c.req.valid('json').reason, principal.id, now);
    return c.json(publicInterestView(grant, now), 200);
  });

  app.openapi(routes.readPublicInterest, async (c) => {
    const principal = c.get('principal');
    const { id } = c.req.valid('param');
    // A consumer sees its own grant; regulators see any. Others are told nothing exists.
    if (principal.id !== id) await authorizer.require(principal, 'consumer:grant-public-interest', platformEntity, { hideExistence: true });
    const grant = await findPublicInterestGrant(platform.db, id);
    if (!grant) throw notFound('public-interest grant');
    return c.json(publicInterestView(grant, platform.clock()), 200);
  });

  app.openapi(routes.readQuota, async (c) => {
    const principal = c.get('principal');
    const { id } = c.req.valid('param');
    // A consumer sees its own standing; regulators see any consumer's. Others are told nothing exists.
    if (principal.id !== id) await authorizer.require(principal, 'consumer:grant-public-interest', platformEntity, { hideExistence: true });
    const consumer = principal.id === id ? principal : await findPrincipal(platform.db, id);
    if (consumer?.role !== 'consumer') throw notFound('consumer');
    const standings = await quotaStandings(platform.db, platform.products.pricing, platform.clock(), [id]);
    return c.json(standings.get(id)!, 200);
  });

  app.openapi(routes.report, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'report:products', platformEntity);
    const { year, format } = c.req.valid('query');
    const report = await annualProductReport(platform.db, year);
    if (format === 'csv') {
      c.header('Content-Type', 'text/csv; charset=utf-8');
      c.header('Content-Disposition', `attachment; filename="products-${year}.csv"`);
      const columns = ['product', 'title', 'titleZh', 'operator', 'status', 'calls', 'publicInterestCalls', 'industryCalls', 'encryptedCalls', 'distinctConsumers', 'feesFen'] as const;
      return c.body(toCsv([...columns], report.products.map((row) => columns.map((column) => row[column]))), 200);
    }
    return c.json(report, 200);
  });

  return app;
}
