import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { secureHeaders } from 'hono/secure-headers';
import { AppError } from '../errors/app-error.js';
import type { Platform } from '../platform.js';
import type { AppEnv } from './app-env.js';
import { authenticate } from './authenticate.js';
import { idempotentRequests, withRequestReplays } from './idempotent-requests.js';
import { docsPage } from './docs-page.js';
import { withExamples } from './openapi-examples.js';
import { withMediaTypeRefusals } from './openapi-common.js';
import { validationError } from '../errors/validation-error.js';
import { errorResponse } from './errors.js';
import { catalogueRoutes } from './routes/catalogue-routes.js';
import { identityRoutes } from './routes/identity-routes.js';
import { jobRoutes } from './routes/job-routes.js';
import { auditRoutes } from './routes/audit-routes.js';
import { reviewRoutes } from './routes/review-routes.js';
import { budgetRoutes } from './routes/budget-routes.js';
import { licensingRoutes } from './routes/licensing-routes.js';
import { productRoutes } from './routes/product-routes.js';
import { incidentRoutes } from './routes/incident-routes.js';
import { sharingRoutes } from './routes/sharing-routes.js';
import { governanceRoutes } from './routes/governance-routes.js';
import { backupRoutes } from './routes/backup-routes.js';
import { consoleRoutes } from '../console/console-routes.js';
import { createOidcVerifier } from '../identity/oidc.js';
import { refuseUnstorableText } from './text-guard.js';

const uploadPath = /^\/v1\/datasets\/[^/]+\/versions$/;
// Encrypted calls and key registrations carry seeded SEAL objects.
const encryptedPath = /^\/v1\/(products\/[^/]+\/(verify-encrypted|score-encrypted)|he-keys)$/;
// A seeded BFV ciphertext and public key at n = 8192 are about 590 kB, 790 kB as base64 in JSON.
const encryptedBodyLimitBytes = 2 * 1024 * 1024;

export function createApp(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error, result.target === 'json' ? 'request body' : `request ${result.target}`);
    },
  });

  app.use('*', secureHeaders());
  app.use('/v1/*', async (c, next) => {
    // Uploads stream to disk under their own, larger limit; everything else is small JSON.
    if (uploadPath.test(c.req.path)) return next();
    const maxSize = encryptedPath.test(c.req.path) ? Math.max(encryptedBodyLimitBytes, platform.config.bodyLimitBytes) : platform.config.bodyLimitBytes;
    // A declared length is what Node's parser holds the body to, so it is checked from the header alone. Hono's
    // middleware would first touch `c.req.raw.body`, which makes the Node adapter build a full web Request with
    // a stream (about a sixth of a product call's time, measured by bench/products.ts); the handler's own
    // json() reads the body without one. Chunked bodies still go through the counting middleware.
    const declared = c.req.header('content-length');
    const chunked = c.req.header('transfer-encoding') !== undefined;
    if (declared !== undefined && !chunked && /^\d{1,15}$/.test(declared)) {
      if (Number(declared) > maxSize) throw new AppError('BODY_TOO_LARGE', `the request body exceeds ${maxSize} bytes`);
      return next();
    }
    // GET and HEAD requests carry no body a handler could read (the fetch Request drops it).
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    return bodyLimit({
      maxSize,
      onError: () => {
        throw new AppError('BODY_TOO_LARGE', `the request body exceeds ${maxSize} bytes`);
      },
    })(c, next);
  });
  const oidc = platform.config.oidc
    ? createOidcVerifier({ ...platform.config.oidc, maxAgeSeconds: platform.config.tokenMaxAgeSeconds, clock: platform.clock })
    : undefined;
  app.use('/v1/*', authenticate(platform, oidc));
  app.use('/v1/*', refuseUnstorableText());
  app.use('/v1/*', idempotentRequests(platform));

  app.openapi(
    createRoute({
      method: 'get',
      path: '/healthz',
      tags: ['platform'],
      summary: 'Liveness: the server answers and its control-plane database does',
      responses: { 200: { description: 'Healthy', content: { 'application/json': { schema: z.object({ status: z.literal('ok'), mode: z.string(), database: z.string() }) } } } },
    }),
    async (c) => {
      await platform.controlPlane.executeSql('SELECT 1');
      return c.json({ status: 'ok' as const, mode: platform.config.mode, database: platform.controlPlane.kind }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/.well-known/jwks.json',
      tags: ['platform'],
      summary: 'The public keys (JWKS) that sign receipts, product answers and audit checkpoints',
      responses: { 200: { description: 'JWK Set (RFC 7517)', content: { 'application/json': { schema: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }) } } } },
    }),
    (c) => {
      c.header('Cache-Control', 'public, max-age=300');
      return c.json(platform.keys.jwks() as { keys: Array<Record<string, unknown>> }, 200);
    },
  );

  app.route('/', catalogueRoutes(platform));
  app.route('/', licensingRoutes(platform));
  app.route('/', identityRoutes(platform));
  app.route('/', jobRoutes(platform));
  app.route('/', reviewRoutes(platform));
  app.route('/', auditRoutes(platform));
  app.route('/', budgetRoutes(platform));
  app.route('/', productRoutes(platform));
  app.route('/', incidentRoutes(platform));
  app.route('/', sharingRoutes(platform));
  app.route('/', governanceRoutes(platform));
  app.route('/', backupRoutes(platform));
  app.route('/', consoleRoutes(oidc));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' });
  const documentConfig = {
    openapi: '3.1.0',
    info: {
      title: 'Public data sandbox (Lingang)',
      version: '0.1.0',
      description: '原始数据不出域，数据可用不可见 — raw data never leaves the domain; data is usable but not visible.',
    },
  };
  let document: unknown;
  app.get('/openapi.json', (c) => c.json((document ??= withRequestReplays(withMediaTypeRefusals(withExamples(app.getOpenAPI31Document(documentConfig) as Parameters<typeof withExamples>[0])))) as Record<string, unknown>));
  app.get('/docs', (c) => c.html(docsPage()));

  app.notFound(() => {
    throw new AppError('NOT_FOUND', 'no such route');
  });
  app.onError(errorResponse);
  return app;
}

export type App = ReturnType<typeof createApp>;
