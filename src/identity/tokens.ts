import crypto from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { AppError } from '../errors/app-error.js';
import type { KeyRing } from './keys.js';

export type TokenSettings = {
  issuer: string;
  audience: string;
  maxAgeSeconds: number;
};

export type VerifiedToken = { principalId: string; tokenId: string; issuedAt: number; expiresAt: number };

export async function mintToken(
  keys: KeyRing,
  settings: TokenSettings,
  principalId: string,
  options: { ttlSeconds?: number; now?: Date } = {},
): Promise<string> {
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const ttl = Math.min(options.ttlSeconds ?? settings.maxAgeSeconds, settings.maxAgeSeconds);
  return new SignJWT({})
    .setProtectedHeader({ alg: 'EdDSA', typ: 'JWT', kid: keys.token.kid })
    .setIssuer(settings.issuer)
    .setAudience(settings.audience)
    .setSubject(principalId)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .setJti(crypto.randomUUID())
    .sign(keys.token.privateKey);
}

/**
 * Checks, in this order: the header parses; the algorithm is EdDSA (so `alg: none` and HMAC confusions stop
 * here); the key id names the token key; the signature; then the claims (issuer, audience, exp, iat, jti,
 * sub, and the maximum age counted from iat). Each failure has its own stable code.
 */
export async function verifyToken(
  keys: KeyRing,
  settings: TokenSettings,
  token: string,
  currentDate: Date = new Date(),
): Promise<VerifiedToken> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    throw new AppError('TOKEN_MALFORMED', 'the bearer token is not a compact JWS');
  }
  if (token.split('.').length !== 3) throw new AppError('TOKEN_MALFORMED', 'the bearer token is not a compact JWS');
  if (header.alg !== 'EdDSA') throw new AppError('TOKEN_ALGORITHM_REFUSED', 'only EdDSA-signed tokens are accepted');
  if (header.typ !== undefined && header.typ !== 'JWT') {
    throw new AppError('TOKEN_WRONG_TYPE', 'the token is not an access token');
  }
  // Only the token key may sign access tokens: a receipt signed with the platform key is not a token.
  if (typeof header.kid !== 'string' || header.kid !== keys.token.kid) {
    throw new AppError('TOKEN_UNKNOWN_KEY', 'the token names a key this service does not use for tokens');
  }
  try {
    const { payload } = await jwtVerify(token, keys.token.publicKey, {
      algorithms: ['EdDSA'],
      issuer: settings.issuer,
      audience: settings.audience,
      requiredClaims: ['exp', 'iat', 'jti', 'sub'],
      maxTokenAge: settings.maxAgeSeconds,
      currentDate,
      clockTolerance: 5,
    });
    if (typeof payload.sub !== 'string' || payload.sub.length === 0 || typeof payload.jti !== 'string') {
      throw new AppError('TOKEN_CLAIM_MISSING', 'the token lacks a subject or token id');
    }
    return { principalId: payload.sub, tokenId: payload.jti, issuedAt: payload.iat!, expiresAt: payload.exp! };
  } catch (error) {
    throw tokenErrorFrom(error);
  }
}

function tokenErrorFrom(error: unknown): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new AppError('TOKEN_SIGNATURE_INVALID', 'the token signature does not verify');
  }
  if (error instanceof joseErrors.JWTExpired) {
    return error.claim === 'iat'
      ? new AppError('TOKEN_TOO_OLD', 'the token is older than the maximum token age')
      : new AppError('TOKEN_EXPIRED', 'the token has expired');
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return new AppError('TOKEN_CLAIM_MISSING', `the token lacks the "${error.claim}" claim`);
    switch (error.claim) {
      case 'iss':
        return new AppError('TOKEN_WRONG_ISSUER', 'the token was issued by another issuer');
      case 'aud':
        return new AppError('TOKEN_WRONG_AUDIENCE', 'the token is meant for another audience');
      case 'nbf':
        return new AppError('TOKEN_NOT_YET_VALID', 'the token is not valid yet');
      case 'iat':
        return new AppError('TOKEN_NOT_YET_VALID', 'the token was issued in the future');
      default:
        return new AppError('TOKEN_MALFORMED', `the token's "${error.claim}" claim is invalid`);
    }
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new AppError('TOKEN_ALGORITHM_REFUSED', 'only EdDSA-signed tokens are accepted');
  }
  return new AppError('TOKEN_MALFORMED', 'the bearer token could not be read');
}
