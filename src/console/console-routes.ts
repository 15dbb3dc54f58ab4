import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { build } from 'esbuild';
import { Hono } from 'hono';
import { projectRoot } from '../bootstrap.js';
import type { OidcVerifier } from '../identity/oidc.js';
import { consoleCss } from './console-styles.js';

/**
 * The web console at /console, served by the API server itself with every asset local (the deployment may have
 * no internet): an HTML shell, the console script bundled from src/console/browser on first request, the
 * stylesheet, and node-seal's web build for encryption in the browser. The console holds no privileges of its
 * own: it calls the public API with the token the person signed in with.
 */
const require = createRequire(import.meta.url);

// WASM needs 'wasm-unsafe-eval'; nothing is loaded from elsewhere, no inline script runs. With OIDC sign-in the
// browser also posts to the identity provider's token endpoint.
const securityPolicy = (connectTo: string[]) =>
  `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data: blob:; connect-src ${["'self'", ...connectTo].join(' ')}; object-src 'none'; base-uri 'none'; frame-ancestors 'none'`;

// The SEAL worker alone may evaluate generated code (node-seal's WASM glue needs it); see seal-worker.ts.
const workerSecurityPolicy = "default-src 'none'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; connect-src 'self'";

const shell = `<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>公共数据沙箱 · 控制台</title><link rel="icon" href="data:,"><link rel="stylesheet" href="/console/assets/console.css"></head>
<body><div id="header"></div><div id="layout" class="layout bare"><nav id="nav"></nav><main id="main"><p>加载中… Loading…</p></main></div>
<script src="/console/assets/console.js"></script></body></html>`;

/** Bundles a browser entry point once, on first request (about 100 ms), and keeps it in memory. */
function bundled(entry: string): () => Promise<string> {
  let bundle: Promise<string> | undefined;
  return () =>
    (bundle ??= build({ entryPoints: [path.join(projectRoot, entry)], bundle: true, platform: 'browser', format: 'iife', target: 'es2022', minify: true, write: false, logLevel: 'silent' })
      .then((result) => result.outputFiles[0]!.text)
      .catch((error: unknown) => {
        bundle = undefined;
        throw error;
      }));
}

export function consoleRoutes(oidc?: OidcVerifier) {
  const app = new Hono();
  let contentSecurityPolicy = securityPolicy(oidc ? [new URL(oidc.issuer).origin] : []);
  const consoleScript = bundled('src/console/browser/main.ts');
  const sealWorker = bundled('src/console/browser/seal-worker.ts');

  app.use('/console/*', async (c, next) => {
    await next();
    c.header('Content-Security-Policy', c.req.path === '/console/assets/seal-worker.js' ? workerSecurityPolicy : contentSecurityPolicy);
  });
  app.get('/console/assets/seal-worker.js', async (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', 'no-cache');
    return c.body(await sealWorker());
  });
  // The console's OIDC client settings (public: issuer, client id, endpoints). 404 when sign-in is by pasted token.
  app.get('/console/oidc.json', async (c) => {
    // No provider is a normal answer, not a missing resource: the sign-in page asks on every load.
    if (!oidc) return c.body(null, 204);
    try {
      const discovery = await oidc.discovery();
      contentSecurityPolicy = securityPolicy([...new Set([new URL(oidc.issuer).origin, new URL(discovery.token_endpoint).origin])]);
      return c.json({ issuer: oidc.issuer, clientId: oidc.clientId, authorizationEndpoint: discovery.authorization_endpoint, tokenEndpoint: discovery.token_endpoint });
    } catch {
      return c.json({ error: { code: 'IDENTITY_PROVIDER_UNAVAILABLE', message: 'the identity provider could not be reached' } }, 502);
    }
  });
  app.get('/console', (c) => {
    c.header('Content-Security-Policy', contentSecurityPolicy);
    return c.html(shell);
  });
  app.get('/console/assets/console.js', async (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', 'no-cache');
    return c.body(await consoleScript());
  });
  app.get('/console/assets/console.css', (c) => {
    c.header('Content-Type', 'text/css; charset=utf-8');
    return c.body(consoleCss);
  });
  app.get('/console/assets/seal.js', (c) => {
    c.header('Content-Type', 'text/javascript; charset=utf-8');
    c.header('Cache-Control', 'public, max-age=86400');
    return c.body(fs.readFileSync(require.resolve('node-seal/throws_wasm_web_umd.js'), 'utf8'));
  });
  return app;
}
