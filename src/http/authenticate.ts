import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors/app-error.js';
import { sql } from 'drizzle-orm';
import { createBatchLoader } from '../db/batch-loader.js';
import { principals } from '../db/schema.js';
import type { PrincipalRow } from '../identity/principals.js';
import { decodeJwt } from 'jose';
import type { OidcVerifier } from '../identity/oidc.js';
import { verifyToken, type VerifiedToken } from '../identity/tokens.js';
import type { Platform } from '../platform.js';
import type { AppEnv } from './app-env.js';

/**
 * Bearer-token authentication. The principal is read from the database on every request, so that disabling an
 * account (which also revokes its tokens for good) or suspending a licence takes effect at once, whatever tokens
 * are still unexpired; concurrent requests
 * share one query. A token's signature is checked once and remembered until the token expires (its claims
 * cannot change); expiry and maximum age are checked again on every request.
 */
const verifiedTokenCacheSize = 10_000;
export function authenticate(platform: Platform, oidc?: OidcVerifier): MiddlewareHandler<AppEnv> {
  const settings = {
    issuer: platform.config.tokenIssuer,
    audience: platform.config.tokenAudience,
    maxAgeSeconds: platform.config.tokenMaxAgeSeconds,
  };
  // Prepared once: drizzle's statement building was a visible share of a product call's time.
  const principalsByIds = platform.db.select().from(principals).where(sql`${principals.id} = ANY(${sql.placeholder('ids')})`).prepare('principals_by_ids');
  const loadPrincipal = createBatchLoader<string, PrincipalRow>(async (ids) => {
    const rows = await principalsByIds.execute({ ids });
    return new Map(rows.map((row) => [row.id, row]));
  });
  const verified = new Map<string, VerifiedToken>();
  async function verifiedToken(token: string): Promise<VerifiedToken> {
    const now = platform.clock();
    const seconds = now.getTime() / 1000;
    const known = verified.get(token);
    if (known && known.expiresAt > seconds && known.issuedAt + settings.maxAgeSeconds > seconds) return known;
    // Anything unusual (expired, too old) goes through the full check for its exact error code.
    const checked = await verifyToken(platform.keys, settings, token, now);
    if (verified.size >= verifiedTokenCacheSize) verified.delete(verified.keys().next().value!);
    verified.set(token, checked);
    return checked;
  }

  return async function authenticateBearer(c, next) {
    const header = c.req.header('authorization');
    if (!header) throw new AppError('TOKEN_MISSING', 'a bearer token is required');
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(header.trim());
    if (!match) throw new AppError('TOKEN_MALFORMED', 'the Authorization header must be "Bearer <token>"');
    const token = match[1]!;
    let principalId: string;
    let issuedAt: number | undefined;
    const claims = oidc ? unverifiedClaims(token) : undefined;
    if (oidc && claims?.iss === oidc.issuer) {
      principalId = await oidc.principalOf(token);
      issuedAt = claims.iat;
    } else {
      ({ principalId, issuedAt } = await verifiedToken(token));
    }
    const principal = await loadPrincipal(principalId);
    if (!principal) throw new AppError('PRINCIPAL_UNKNOWN', 'the token names no known principal');
    if (principal.status !== 'active') throw new AppError('PRINCIPAL_DISABLED', 'this account is disabled');
    // Disabling an account revokes the tokens issued until then, for good (iat is in whole seconds: a token from the
    // second of the disabling counts as earlier).
    if (principal.tokensNotBefore && (issuedAt === undefined || issuedAt * 1000 < principal.tokensNotBefore.getTime())) {
      throw new AppError('TOKEN_REVOKED', 'this token was issued before the account was last disabled; ask for a new one');
    }
    c.set('principal', principal);
    await next();
  };
}

/** The token's claims read unverified: the issuer chooses the verifier, which checks them all. */
function unverifiedClaims(token: string): ReturnType<typeof decodeJwt> | undefined {
  try {
    return decodeJwt(token);
  } catch {
    return undefined;
  }
}
