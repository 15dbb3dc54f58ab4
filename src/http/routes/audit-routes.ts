import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { and, asc, desc, gte, lt, sql, type SQL } from 'drizzle-orm';
import { platformEntity } from '../../authz/entities.js';
import { auditCheckpoints, auditLeaves } from '../../db/schema.js';
import { AppError } from '../../errors/app-error.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses } from '../openapi-common.js';

const checkpointSchema = z
  .object({
    tree_size: z.number().int(),
    root_hash: z.string().openapi({ description: 'lowercase hex SHA-256' }),
    timestamp: z.string(),
    jws: z.string().openapi({ description: 'compact JWS over {tree_size, root_hash, timestamp}, signed with the platform key' }),
  })
  .openapi('Checkpoint');

const whole = (name: string, description: string) =>
  z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).openapi({ param: { name, in: 'query' }, description });

const routes = {
  checkpoint: createRoute({
    method: 'get',
    path: '/v1/audit/checkpoint',
    tags: ['audit'],
    summary: 'The newest signed checkpoint of the audit log (made on demand when the log has grown)',
    security: bearerSecurity,
    responses: { 200: { description: 'The checkpoint', content: { 'application/json': { schema: checkpointSchema } } }, ...errorResponses(403) },
  }),
  checkpoints: createRoute({
    method: 'get',
    path: '/v1/audit/checkpoints',
    tags: ['audit'],
    summary: 'Stored checkpoints, oldest first (for witnesses)',
    security: bearerSecurity,
    request: { query: z.object({ since: whole('since', 'smallest tree size to list').optional() }) },
    responses: { 200: { description: 'Checkpoints', content: { 'application/json': { schema: z.object({ checkpoints: z.array(checkpointSchema) }) } } }, ...errorResponses(403) },
  }),
  entries: createRoute({
    method: 'get',
    path: '/v1/audit/entries',
    tags: ['audit'],
    summary: 'Leaves of the audit log with their events (regulators); filter by type, operator, dataset, job and time',
    security: bearerSecurity,
    request: {
      query: z.object({
        start: whole('start', 'first leaf index (inclusive)').default(0),
        end: whole('end', 'last leaf index (exclusive); at most 10,000 leaves per call, unless `limit` is given').optional(),
        limit: z.coerce
          .number()
          .int()
          .min(1)
          .max(1000)
          .optional()
          .openapi({
            param: { name: 'limit', in: 'query' },
            description:
              'Search mode: the first `limit` matching leaves of the whole range (to `end`, or the log\'s end), in `order`, with `next` to continue from. Without it, a page of at most 10,000 leaves by index',
          }),
        order: z
          .enum(['asc', 'desc'])
          .optional()
          .openapi({ param: { name: 'order', in: 'query' }, description: 'Search mode only: oldest first (asc, the default) or newest first (desc)' }),
        type: z
          .string()
          .max(100)
          .optional()
          .openapi({ param: { name: 'type', in: 'query' }, description: 'an event type (`licence.granted`), or a family of them (`licence.*`)' }),
        operator: z.string().max(100).optional().openapi({ param: { name: 'operator', in: 'query' } }),
        dataset: z.string().max(100).optional().openapi({ param: { name: 'dataset', in: 'query' } }),
        job: z.string().max(100).optional().openapi({ param: { name: 'job', in: 'query' } }),
        from: z.iso.datetime({ offset: true }).optional().openapi({ param: { name: 'from', in: 'query' } }),
        to: z.iso.datetime({ offset: true }).optional().openapi({ param: { name: 'to', in: 'query' } }),
      }),
    },
    responses: {
      200: {
        description: '`leaf` is the exact canonical JSON text that was hashed',
        content: {
          'application/json': {
            schema: z.object({
              entries: z.array(z.object({ index: z.number().int(), leaf: z.string(), event: z.record(z.string(), z.unknown()) })),
              next: z
                .object({ start: z.number().int().optional(), end: z.number().int().optional() })
                .optional()
                .openapi({ description: 'Search mode, when more may match: the `start` (asc) or `end` (desc) of the next call' }),
            }),
          },
        },
      },
      ...errorResponses(400, 403),
    },
  }),
  inclusion: createRoute({
    method: 'get',
    path: '/v1/audit/proofs/inclusion',
    tags: ['audit'],
    summary: 'RFC 9162 inclusion proof of a leaf in the tree of a given size',
    security: bearerSecurity,
    request: { query: z.object({ index: whole('index', 'leaf index'), size: whole('size', 'tree size') }) },
    responses: {
      200: {
        description: 'The proof',
        content: { 'application/json': { schema: z.object({ leaf_index: z.number().int(), tree_size: z.number().int(), leaf_hash: z.string(), inclusion_path: z.array(z.string()) }) } },
      },
      ...errorResponses(400, 403),
    },
  }),
  consistency: createRoute({
    method: 'get',
    path: '/v1/audit/proofs/consistency',
    tags: ['audit'],
    summary: 'RFC 9162 consistency proof between two tree sizes',
    security: bearerSecurity,
    request: { query: z.object({ first: whole('first', 'the older size'), second: whole('second', 'the newer size') }) },
    responses: {
      200: { description: 'The proof', content: { 'application/json': { schema: z.object({ first: z.number().int(), second: z.number().int(), consistency_path: z.array(z.string()) }) } } },
      ...errorResponses(400, 403),
    },
  }),
};

export function auditRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { authorizer, db } = platform;

  app.openapi(routes.checkpoint, async (c) => {
    await authorizer.require(c.get('principal'), 'audit:read-proofs', platformEntity);
    return c.json(await platform.audit.checkpoint(), 200);
  });

  app.openapi(routes.checkpoints, async (c) => {
    await authorizer.require(c.get('principal'), 'audit:read-proofs', platformEntity);
    const rows = await db.select().from(auditCheckpoints).where(gte(auditCheckpoints.treeSize, c.req.valid('query').since ?? 0)).orderBy(asc(auditCheckpoints.treeSize)).limit(10_000);
    return c.json({ checkpoints: rows.map((row) => ({ tree_size: row.treeSize, root_hash: row.rootHash, timestamp: row.timestamp, jws: row.jws })) }, 200);
  });

  app.openapi(routes.entries, async (c) => {
    await authorizer.require(c.get('principal'), 'audit:read-entries', platformEntity);
    const query = c.req.valid('query');
    const searching = query.limit !== undefined || query.order !== undefined;
    const end = query.end ?? (searching ? undefined : query.start + 1000);
    if (end !== undefined && end < query.start) throw new AppError('VALIDATION_FAILED', 'end must not be before start');
    if (!searching && end! - query.start > 10_000) throw new AppError('VALIDATION_FAILED', 'end must be at most 10,000 leaves after start (or give limit to search the whole range)');
    const conditions: SQL[] = [gte(auditLeaves.leafIndex, query.start)];
    if (end !== undefined) conditions.push(lt(auditLeaves.leafIndex, end));
    if (query.type?.endsWith('.*')) {
      const family = query.type.slice(0, -2);
      if (!/^[a-z][a-z-]*$/.test(family)) throw new AppError('VALIDATION_FAILED', 'a family of event types is written as its lower-case name and .* (licence.*)', [{ path: 'type', problem: 'is not a family' }]);
      conditions.push(sql`${auditLeaves.eventType} LIKE ${`${family}.%`}`);
    } else if (query.type) conditions.push(sql`${auditLeaves.eventType} = ${query.type}`);
    if (query.operator) conditions.push(sql`${auditLeaves.operatorId} = ${query.operator}`);
    if (query.job) conditions.push(sql`${auditLeaves.jobId} = ${query.job}`);
    if (query.dataset) conditions.push(sql`${auditLeaves.datasets} @> ${JSON.stringify([query.dataset])}::jsonb`);
    if (query.from) conditions.push(gte(auditLeaves.createdAt, new Date(query.from)));
    if (query.to) conditions.push(lt(auditLeaves.createdAt, new Date(query.to)));
    const newestFirst = query.order === 'desc';
    const found = db
      .select({ leafIndex: auditLeaves.leafIndex, leaf: auditLeaves.leaf })
      .from(auditLeaves)
      .where(and(...conditions))
      .orderBy(newestFirst ? desc(auditLeaves.leafIndex) : asc(auditLeaves.leafIndex));
    // One more than asked for tells whether there is a next page.
    const rows = searching ? await found.limit((query.limit ?? 1000) + 1) : await found;
    const page = searching ? rows.slice(0, query.limit ?? 1000) : rows;
    const last = page.at(-1);
    const next = rows.length > page.length && last ? (newestFirst ? { end: last.leafIndex } : { start: last.leafIndex + 1 }) : undefined;
    return c.json({ entries: page.map((row) => ({ index: row.leafIndex, leaf: row.leaf, event: JSON.parse(row.leaf) as Record<string, unknown> })), ...(next ? { next } : {}) }, 200);
  });

  app.openapi(routes.inclusion, async (c) => {
    await authorizer.require(c.get('principal'), 'audit:read-proofs', platformEntity);
    const { index, size } = c.req.valid('query');
    const tree = await platform.audit.sync();
    if (size > tree.size || index >= size) throw new AppError('VALIDATION_FAILED', `need index < size ≤ ${tree.size}`);
    return c.json(
      { leaf_index: index, tree_size: size, leaf_hash: tree.leafHashAt(index).toString('hex'), inclusion_path: tree.inclusionProof(index, size).map((hash) => hash.toString('hex')) },
      200,
    );
  });

  app.openapi(routes.consistency, async (c) => {
    await authorizer.require(c.get('principal'), 'audit:read-proofs', platformEntity);
    const { first, second } = c.req.valid('query');
    const tree = await platform.audit.sync();
    if (first < 1 || first > second || second > tree.size) throw new AppError('VALIDATION_FAILED', `need 1 ≤ first ≤ second ≤ ${tree.size}`);
    return c.json({ first, second, consistency_path: tree.consistencyProof(first, second).map((hash) => hash.toString('hex')) }, 200);
  });

  return app;
}
