import crypto from 'node:crypto';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';

/**
 * A small OpenID Connect provider for tests: discovery, JWKS, an authorization endpoint that signs in a chosen
 * subject at once, and a token endpoint that checks the PKCE verifier. Real HTTP and real signatures, so the
 * platform and the console are tested against the protocol, not against a stub of their own code.
 */
export async function startIdentityProvider(options: { subject: () => string }) {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'test-idp-1', alg: 'ES256', use: 'sig' };
  const codes = new Map<string, { challenge: string; clientId: string; redirectUri: string; subject: string }>();
  const app = new Hono();
  let issuer = '';

  app.use('*', async (c, next) => {
    await next();
    c.header('Access-Control-Allow-Origin', '*');
  });
  app.options('*', (c) => c.body(null, 204, { 'Access-Control-Allow-Origin': '*', 'Access-Control-Allow-Headers': 'content-type', 'Access-Control-Allow-Methods': 'POST' }));
  app.get('/.well-known/openid-configuration', (c) => c.json({ issuer, authorization_endpoint: `${issuer}/authorize`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks` }));
  app.get('/jwks', (c) => c.json({ keys: [jwk] }));
  app.get('/authorize', (c) => {
    const query = c.req.query();
    if (query.response_type !== 'code' || query.code_challenge_method !== 'S256' || !query.code_challenge) return c.text('bad request', 400);
    const code = crypto.randomBytes(16).toString('hex');
    codes.set(code, { challenge: query.code_challenge, clientId: query.client_id!, redirectUri: query.redirect_uri!, subject: options.subject() });
    return c.redirect(`${query.redirect_uri}?code=${code}&state=${encodeURIComponent(query.state ?? '')}`);
  });
  app.post('/token', async (c) => {
    const form = await c.req.parseBody();
    const grant = codes.get(String(form.code));
    codes.delete(String(form.code));
    const challenge = crypto.createHash('sha256').update(String(form.code_verifier)).digest('base64url');
    if (!grant || grant.challenge !== challenge || grant.redirectUri !== form.redirect_uri || grant.clientId !== form.client_id) return c.json({ error: 'invalid_grant' }, 400);
    return c.json({ token_type: 'Bearer', id_token: await idToken({ sub: grant.subject, aud: grant.clientId }) });
  });

  const signer = (key: CryptoKey, kid: string) => (claims: { sub: string; aud: string; iss?: string }) =>
    new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(claims.iss ?? issuer)
      .setSubject(claims.sub)
      .setAudience(claims.aud)
      .setIssuedAt()
      .setExpirationTime('10m')
      .sign(key);
  const idToken = signer(privateKey, 'test-idp-1');

  const server: ServerType = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', () => resolve()));
  issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const stranger = await generateKeyPair('ES256');
  return {
    issuer: () => issuer,
    idToken,
    /** A token naming this provider as issuer but signed by a key it never published. */
    forgedToken: signer(stranger.privateKey, 'test-idp-1'),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
