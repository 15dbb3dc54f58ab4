import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { datasetEntity, institutionEntity, platformEntity } from '../../authz/entities.js';
import { findDataset, getCatalogueEntry, listCatalogue, registerDataset } from '../../catalog/catalogue.js';
import { datasetRegistrationSchema } from '../../catalog/registration.js';
import { catalogueChangeSchema, catalogueHistory, catalogueReviewSchema, listRevisions, proposeCatalogueChange, reviewCatalogueChange, revisionStatuses, toRevisionView } from '../../catalog/catalogue-revisions.js';
import { loadDatasetVersion, type SourceFormat } from '../../domain-store/load-version.js';
import { csvEncodingNamed, type CsvEncoding } from '../../domain-store/snapshot-store.js';
import { AppError, notFound } from '../../errors/app-error.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const columnSchema = z.object({
  name: z.string(),
  type: z.string(),
  class: z.enum(['direct_identifier', 'quasi_identifier', 'sensitive', 'attribute']),
  nullable: z.boolean(),
  description: z.string(),
  descriptionZh: z.string().optional().openapi({ description: 'The description in Chinese, where the source wrote one' }),
  publicDomain: z.array(z.union([z.string(), z.number()])).optional(),
  bounds: z.object({ min: z.number(), max: z.number() }).optional(),
});

const versionSchema = z
  .object({
    id: z.string(),
    versionNumber: z.number().int(),
    contentHash: z.string().openapi({ description: 'SHA-256 of the snapshot file in the domain store' }),
    sourceHash: z.string().openapi({ description: 'SHA-256 of the file the institution delivered' }),
    sourceFormat: z.enum(['csv', 'parquet']),
    rowCount: z.number().int(),
    byteSize: z.number().int(),
    catalogueVersion: z.number().int(),
    createdAt: z.string(),
    quality: z
      .object({ score: z.number().nullable(), passed: z.boolean() })
      .nullable()
      .openapi({ description: 'The quality rules\' result for this version (0–100; null when the dataset declares no rules)' }),
  })
  .openapi('DatasetVersion');

const catalogueEntrySchema = z
  .object({
    id: z.string().openapi({ example: 'power_readings' }),
    title: z.string(),
    titleZh: z.string(),
    description: z.string(),
    descriptionZh: z.string().nullable().openapi({ description: 'The description in Chinese (null where the source wrote none)' }),
    institution: z.object({ id: z.string(), name: z.string(), nameZh: z.string() }),
    category: z.string(),
    grade: z.enum(['L1', 'L2', 'L3', 'L4', 'important', 'core']),
    openData: z.boolean(),
    sharingType: z.enum(['unconditional', 'conditional', 'none']),
    sharingBasis: z.string().nullable(),
    legalBasis: z.string(),
    updateFrequency: z.string(),
    privacyUnit: z.string(),
    uniqueKey: z.array(z.string()).nullable(),
    catalogueVersion: z.number().int(),
    columns: z.array(columnSchema),
    qualityRules: z.array(z.record(z.string(), z.unknown())),
    versions: z.array(versionSchema),
    latestVersion: z.string().nullable(),
    nextUpdateDue: z.string().nullable().openapi({ description: 'When the next delivery is due at the declared update frequency (null for static data or no data yet)' }),
    updateOverdue: z.boolean().openapi({ description: 'The next delivery is late, or no data was ever loaded (art. 9)' }),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('CatalogueEntry');

const datasetIdParam = z.object({ id: z.string().min(1).max(63).openapi({ param: { name: 'id', in: 'path' }, example: 'power_readings' }) });

const listRoute = createRoute({
  method: 'get',
  path: '/v1/datasets',
  tags: ['catalogue'],
  summary: 'The catalogue: metadata, grades, column classes and version hashes (never rows)',
  security: bearerSecurity,
  responses: {
    200: { description: 'Catalogue entries', content: { 'application/json': { schema: z.object({ datasets: z.array(catalogueEntrySchema) }) } } },
    ...errorResponses(403),
  },
});

const getRoute = createRoute({
  method: 'get',
  path: '/v1/datasets/{id}',
  tags: ['catalogue'],
  summary: 'One catalogue entry',
  security: bearerSecurity,
  request: { params: datasetIdParam },
  responses: {
    200: { description: 'The entry', content: { 'application/json': { schema: catalogueEntrySchema } } },
    ...errorResponses(403, 404),
  },
});

const registerRoute = createRoute({
  method: 'post',
  path: '/v1/datasets',
  tags: ['catalogue'],
  summary: 'Register a dataset in the catalogue (institution users, for their own institution)',
  security: bearerSecurity,
  request: { body: jsonBody(datasetRegistrationSchema, 'The catalogue entry') },
  responses: {
    201: { description: 'Registered', content: { 'application/json': { schema: catalogueEntrySchema } } },
    ...errorResponses(400, 403, 409, 413),
  },
});

const loadRoute = createRoute({
  method: 'post',
  path: '/v1/datasets/{id}/versions',
  tags: ['catalogue'],
  summary: 'Load a new immutable version from a CSV or Parquet file (the source institution only)',
  description:
    'Send the file as the request body with Content-Type text/csv or application/vnd.apache.parquet. A CSV file is read as UTF-8, or as GB 18030 when sent as `text/csv; charset=gb18030` (GBK and GB 2312, what spreadsheet software on Chinese Windows saves, are GB 18030 too). The file is checked against the registered schema; a wrong column, type or encoding is refused and leaves no version.',
  security: bearerSecurity,
  request: {
    params: datasetIdParam,
    body: {
      required: true,
      content: {
        'text/csv': { schema: z.string().openapi({ format: 'binary' }) },
        'application/vnd.apache.parquet': { schema: z.string().openapi({ format: 'binary' }) },
      },
    },
  },
  responses: {
    201: { description: 'The new version', content: { 'application/json': { schema: versionSchema } } },
    ...errorResponses(403, 404, 409, 413, 415, 422),
  },
});

const revisionView = z.record(z.string(), z.unknown()).openapi('CatalogueRevision');
const revisionParams = datasetIdParam.extend({ revision: z.coerce.number().int().min(1).openapi({ param: { name: 'revision', in: 'path' }, example: 2 }) });

const historyRoute = createRoute({
  method: 'get',
  path: '/v1/datasets/{id}/revisions',
  tags: ['catalogue'],
  summary: 'The entry\'s version history (art. 10): every revision with its readable diff, proposer, reviewer and decision',
  security: bearerSecurity,
  request: { params: datasetIdParam },
  responses: { 200: { description: 'Revisions, oldest first', content: { 'application/json': { schema: z.object({ dataset: z.string(), revisions: z.array(revisionView) }) } } }, ...errorResponses(403, 404) },
});

const revisionListRoute = createRoute({
  method: 'get',
  path: '/v1/catalogue-revisions',
  tags: ['catalogue'],
  summary: 'Catalogue changes across entries (art. 10): the reviewers\' queue and a source\'s own proposals',
  description: 'Revisions under review come first, oldest first; decided ones follow, newest first. Each entry\'s whole history is at /v1/datasets/{id}/revisions.',
  security: bearerSecurity,
  request: {
    query: z.object({
      status: z.enum(revisionStatuses).optional(),
      institution: z.string().min(1).max(63).optional().openapi({ description: 'Only entries of this source institution', example: 'power-utility' }),
      limit: z.coerce.number().int().min(1).max(500).default(100),
    }),
  },
  responses: {
    200: {
      description: 'Revisions with the entry they change',
      content: { 'application/json': { schema: z.object({ revisions: z.array(z.record(z.string(), z.unknown()).openapi('CatalogueRevisionInQueue')) }) } },
    },
    ...errorResponses(400, 403),
  },
});

const proposeRoute = createRoute({
  method: 'post',
  path: '/v1/datasets/{id}/revisions',
  tags: ['catalogue'],
  summary: 'Propose a change to a catalogue entry (the source institution); it takes effect once reviewed',
  description: 'Columns, key and privacy unit cannot change once data is loaded: a new structure is a new dataset.',
  security: bearerSecurity,
  request: { params: datasetIdParam, body: jsonBody(catalogueChangeSchema, 'The fields to change and why') },
  responses: { 201: { description: 'The proposed revision with its diff', content: { 'application/json': { schema: revisionView } } }, ...errorResponses(400, 403, 404, 409) },
});

const reviewRevisionRoute = createRoute({
  method: 'post',
  path: '/v1/datasets/{id}/revisions/{revision}/review',
  tags: ['catalogue'],
  summary: 'Publish or reject a proposed change (the data centre or regulators; never its proposer)',
  security: bearerSecurity,
  request: { params: revisionParams, body: jsonBody(catalogueReviewSchema, 'The decision') },
  responses: { 200: { description: 'The revision', content: { 'application/json': { schema: revisionView } } }, ...errorResponses(400, 403, 404, 409) },
});

const formatByMediaType: Record<string, SourceFormat> = {
  'text/csv': 'csv',
  'application/vnd.apache.parquet': 'parquet',
  'application/x-parquet': 'parquet',
};

/** The `charset` parameter of a CSV upload's Content-Type; UTF-8 when there is none. */
function csvEncoding(parameters: string[]): CsvEncoding {
  const charset = parameters.find((parameter) => parameter.startsWith('charset='))?.slice('charset='.length).replaceAll('"', '');
  if (charset === undefined) return 'utf-8';
  const encoding = csvEncodingNamed(charset);
  if (!encoding) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'a CSV file is read as charset utf-8 or gb18030 (GBK and GB 2312 files are gb18030)');
  return encoding;
}

export function catalogueRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { db, authorizer } = platform;

  app.openapi(listRoute, async (c) => {
    await authorizer.require(c.get('principal'), 'catalogue:list', platformEntity);
    return c.json({ datasets: await listCatalogue(db, platform.clock()) }, 200);
  });

  app.openapi(getRoute, async (c) => {
    const dataset = await findDataset(db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(c.get('principal'), 'dataset:read', datasetEntity(dataset), { hideExistence: true });
    return c.json(await getCatalogueEntry(db, dataset.id, platform.clock()), 200);
  });

  app.openapi(registerRoute, async (c) => {
    const principal = c.get('principal');
    if (!principal.institutionId) throw new AppError('FORBIDDEN', 'only institution users register datasets');
    await authorizer.require(principal, 'dataset:register', institutionEntity(principal.institutionId));
    const dataset = await registerDataset(db, c.req.valid('json'), principal.institutionId, principal.id, platform.clock());
    return c.json(await getCatalogueEntry(db, dataset.id, platform.clock()), 201);
  });

  app.openapi(loadRoute, async (c) => {
    const principal = c.get('principal');
    const dataset = await findDataset(db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(principal, 'dataset:load-version', datasetEntity(dataset));
    const [mediaType = '', ...parameters] = (c.req.header('content-type') ?? '').split(';').map((part) => part.trim().toLowerCase());
    const format = formatByMediaType[mediaType];
    if (!format) throw new AppError('UNSUPPORTED_MEDIA_TYPE', 'send the file as text/csv or application/vnd.apache.parquet');
    const encoding = format === 'csv' ? csvEncoding(parameters) : undefined;
    const upload = platform.store.stagingPath(format === 'csv' ? '.csv' : '.parquet');
    try {
      await receiveUpload(c.req.raw, upload, platform.config.uploadLimitBytes);
      const version = await loadDatasetVersion({ db, store: platform.store, clock: platform.clock }, { dataset, file: upload, format, loadedBy: principal.id, encoding });
      return c.json({ ...version, createdAt: version.createdAt.toISOString() }, 201);
    } finally {
      fs.rmSync(upload, { force: true });
    }
  });

  app.openapi(historyRoute, async (c) => {
    const dataset = await findDataset(db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(c.get('principal'), 'dataset:read', datasetEntity(dataset), { hideExistence: true });
    return c.json({ dataset: dataset.id, revisions: (await catalogueHistory(db, dataset.id)).map(toRevisionView) }, 200);
  });

  app.openapi(revisionListRoute, async (c) => {
    // Revisions are catalogue metadata, readable like the entries and each entry's history.
    await authorizer.require(c.get('principal'), 'catalogue:list', platformEntity);
    const { status, institution, limit } = c.req.valid('query');
    const rows = await listRevisions(db, { status, institutionId: institution, limit });
    return c.json({ revisions: rows.map((row) => ({ ...toRevisionView(row), datasetTitle: row.datasetTitle, datasetTitleZh: row.datasetTitleZh, institution: row.institutionId })) }, 200);
  });

  app.openapi(proposeRoute, async (c) => {
    const principal = c.get('principal');
    const dataset = await findDataset(db, c.req.valid('param').id);
    if (!dataset) throw notFound('dataset');
    await authorizer.require(principal, 'catalogue:propose-change', datasetEntity(dataset));
    return c.json(toRevisionView(await proposeCatalogueChange(platform, principal, dataset, c.req.valid('json'))), 201);
  });

  app.openapi(reviewRevisionRoute, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'catalogue:review-change', platformEntity);
    const { id, revision } = c.req.valid('param');
    return c.json(toRevisionView(await reviewCatalogueChange(platform, principal, id, revision, c.req.valid('json'))), 200);
  });

  return app;
}

/** Streams the request body to a file, stopping at the size limit so a huge upload cannot fill memory. */
async function receiveUpload(request: Request, file: string, limitBytes: number): Promise<void> {
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > limitBytes) throw new AppError('BODY_TOO_LARGE', 'the file is larger than the upload limit');
  if (!request.body) throw new AppError('BAD_REQUEST', 'the request has no body');
  let received = 0;
  const counted = Readable.fromWeb(request.body as import('node:stream/web').ReadableStream<Uint8Array>).map((chunk: Buffer) => {
    received += chunk.length;
    if (received > limitBytes) throw new AppError('BODY_TOO_LARGE', 'the file is larger than the upload limit');
    return chunk;
  });
  await pipeline(counted, fs.createWriteStream(file, { mode: 0o600 }));
}
