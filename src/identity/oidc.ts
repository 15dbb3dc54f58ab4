import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { AppError } from '../errors/app-error.js';

/**
 * Sign-in through an OpenID Connect identity provider (production). The console runs the authorization-code
 * flow with PKCE in the browser and sends the provider's ID token as its bearer token; this verifies it against
 * the provider's published keys (discovered from the issuer), its issuer and audience (the console's client id),
 * and names the principal by a claim. The principal must exist here: the provider says who someone is, the
 * platform's own records say what they may do.
 */
const discoverySchema = z.object({
  issuer: z.string(),
  authorization_endpoint: z.string().url(),
  token_endpoint: z.string().url(),
  jwks_uri: z.string().url(),
});
export type OidcDiscovery = z.infer<typeof discoverySchema>;

export function createOidcVerifier(settings: { issuer: string; clientId: string; principalClaim: string; maxAgeSeconds: number; clock: () => Date }) {
  let discovered: Promise<{ document: OidcDiscovery; keys: ReturnType<typeof createRemoteJWKSet> }> | undefined;

  const discover = () =>
    (discovered ??= (async () => {
      const response = await fetch(`${settings.issuer}/.well-known/openid-configuration`);
      if (!response.ok) throw new Error(`OIDC discovery answered ${response.status}`);
      const document = discoverySchema.parse(await response.json());
      // OpenID Connect Discovery §4.3: the document must name exactly the issuer it was fetched from.
      if (document.issuer.replace(/\/$/, '') !== settings.issuer) throw new Error('the OIDC discovery document names another issuer');
      return { document, keys: createRemoteJWKSet(new URL(document.jwks_uri)) };
    })().catch((error: unknown) => {
      discovered = undefined;
      throw error;
    }));

  return {
    issuer: settings.issuer,
    clientId: settings.clientId,
    discovery: async () => (await discover()).document,
    /** The principal id the token names, or an AppError with a TOKEN_* code. */
    async principalOf(token: string): Promise<string> {
      let keys: ReturnType<typeof createRemoteJWKSet>;
      try {
        keys = (await discover()).keys;
      } catch {
        throw new AppError('TOKEN_UNKNOWN_KEY', 'the identity provider could not be reached to check the token');
      }
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer: settings.issuer,
          audience: settings.clientId,
          algorithms: ['RS256', 'ES256', 'EdDSA'],
          requiredClaims: ['exp', 'iat', settings.principalClaim],
          maxTokenAge: settings.maxAgeSeconds,
          currentDate: settings.clock(),
          clockTolerance: 5,
        });
        const principal = payload[settings.principalClaim];
        if (typeof principal !== 'string' || principal.length === 0 || principal.length > 200) throw new AppError('TOKEN_CLAIM_MISSING', `the token's ${settings.principalClaim} claim does not name a principal`);
        return principal;
      } catch (error) {
        if (error instanceof AppError) throw error;
        if (error instanceof joseErrors.JWSSignatureVerificationFailed) throw new AppError('TOKEN_SIGNATURE_INVALID', 'the token signature does not verify');
        if (error instanceof joseErrors.JWKSNoMatchingKey) throw new AppError('TOKEN_UNKNOWN_KEY', 'the identity provider publishes no key for this token');
        if (error instanceof joseErrors.JWTExpired) throw new AppError('TOKEN_EXPIRED', 'the token has expired');
        if (error instanceof joseErrors.JWTClaimValidationFailed) {
          if (error.claim === 'aud') throw new AppError('TOKEN_WRONG_AUDIENCE', 'the token is meant for another client');
          if (error.claim === 'iss') throw new AppError('TOKEN_WRONG_ISSUER', 'the token was issued by another issuer');
          throw new AppError('TOKEN_CLAIM_MISSING', `the token's "${error.claim}" claim is missing or invalid`);
        }
        if (error instanceof joseErrors.JOSEAlgNotAllowed) throw new AppError('TOKEN_ALGORITHM_REFUSED', 'the token uses an algorithm that is not accepted');
        throw new AppError('TOKEN_MALFORMED', 'the token could not be read');
      }
    },
  };
}

export type OidcVerifier = ReturnType<typeof createOidcVerifier>;
