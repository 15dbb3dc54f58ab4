import { decodeJwt } from 'jose';
import { recordAuditEvents } from '../audit/audit-log.js';
import { AppError, notFound } from '../errors/app-error.js';
import type { Platform } from '../platform.js';
import { findPrincipal } from './principals.js';
import { mintToken } from './tokens.js';

/**
 * Mints an access token for an active principal and records who minted it for whom, and until when (a token lets
 * its holder act as the subject). The token id (jti) names it in the audit log; the token itself is never logged.
 * If the record cannot be written, no token is handed out. Used by `POST /v1/tokens` and `pds token`.
 */
export async function issueToken(platform: Pick<Platform, 'db' | 'keys' | 'config' | 'clock'>, principalId: string, actor: string, ttlSeconds?: number): Promise<string> {
  const subject = await findPrincipal(platform.db, principalId);
  if (!subject) throw notFound('principal');
  if (subject.status !== 'active') throw new AppError('PRINCIPAL_DISABLED', 'the account is disabled; enable it before minting a token for it');
  const { config } = platform;
  const now = platform.clock();
  const token = await mintToken(
    platform.keys,
    { issuer: config.tokenIssuer, audience: config.tokenAudience, maxAgeSeconds: config.tokenMaxAgeSeconds },
    subject.id,
    { ...(ttlSeconds ? { ttlSeconds } : {}), now },
  );
  const { jti, exp } = decodeJwt(token);
  await recordAuditEvents(platform.db, [{ type: 'token.minted', actor, operator: subject.operatorId, details: { subject: subject.id, role: subject.role, tokenId: jti, expiresAt: new Date(exp! * 1000).toISOString() } }], now);
  return token;
}
