import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors/app-error.js';
import { findPrincipal } from '../identity/principals.js';
import { verifyToken } from '../identity/tokens.js';
import type { Platform } from '../platform.js';
import type { AppEnv } from './app-env.js';

/**
 * Bearer-token authentication. The principal is read from the database on every request, so that disabling an
 * account or suspending a licence takes effect at once, whatever tokens are still unexpired.
 */
export function authenticate(platform: Platform): MiddlewareHandler<AppEnv> {
  const settings = {
    issuer: platform.config.tokenIssuer,
    audience: platform.config.tokenAudience,
    maxAgeSeconds: platform.config.tokenMaxAgeSeconds,
  };
  return async function authenticateBearer(c, next) {
    const header = c.req.header('authorization');
    if (!header) throw new AppError('TOKEN_MISSING', 'a bearer token is required');
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header.trim());
    if (!match) throw new AppError('TOKEN_MALFORMED', 'the Authorization header must be "Bearer <token>"');
    const verified = await verifyToken(platform.keys, settings, match[1]!, platform.clock());
    const principal = await findPrincipal(platform.db, verified.principalId);
    if (!principal) throw new AppError('PRINCIPAL_UNKNOWN', 'the token names no known principal');
    if (principal.status !== 'active') throw new AppError('PRINCIPAL_DISABLED', 'this account is disabled');
    c.set('principal', principal);
    await next();
  };
}
