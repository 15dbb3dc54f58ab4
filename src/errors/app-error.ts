/**
 * The one error type that crosses the HTTP boundary. Its code is stable (clients and tests match on it),
 * its message is written for the caller and must never carry a data value, SQL text, stack or path.
 * Anything else that is thrown becomes a generic 500 (see http/errors.ts).
 */
export type ErrorCode =
  | 'BAD_REQUEST'
  | 'VALIDATION_FAILED'
  | 'UNKNOWN_FIELD'
  | 'BODY_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'TOKEN_MISSING'
  | 'TOKEN_MALFORMED'
  | 'TOKEN_ALGORITHM_REFUSED'
  | 'TOKEN_UNKNOWN_KEY'
  | 'TOKEN_SIGNATURE_INVALID'
  | 'TOKEN_EXPIRED'
  | 'TOKEN_NOT_YET_VALID'
  | 'TOKEN_TOO_OLD'
  | 'TOKEN_CLAIM_MISSING'
  | 'TOKEN_WRONG_ISSUER'
  | 'TOKEN_WRONG_AUDIENCE'
  | 'TOKEN_WRONG_TYPE'
  | 'PRINCIPAL_UNKNOWN'
  | 'PRINCIPAL_DISABLED'
  | 'TOKEN_REVOKED'
  | 'SELF_DISABLE'
  | 'FORBIDDEN'
  | 'LICENCE_INACTIVE'
  | 'LICENCE_NOT_IN_FORCE'
  | 'CATALOGUE_CHANGED'
  | 'POLICY_CHANGED'
  | 'SHARING_WITHDRAWN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'DATASET_EXISTS'
  | 'VERSION_EXISTS'
  | 'SCHEMA_MISMATCH'
  | 'FILE_UNREADABLE'
  | 'INVALID_TRANSITION'
  | 'DEV_TOKENS_DISABLED'
  | 'RESULT_NOT_AVAILABLE'
  | 'SELF_REVIEW'
  | 'DUPLICATE_REVIEW'
  | 'RATE_LIMITED'
  | 'DAILY_QUOTA_EXCEEDED'
  | 'SUBJECT_QUOTA_EXCEEDED'
  | 'CONSUMER_THROTTLED'
  | 'PUBLIC_INTEREST_NOT_GRANTED'
  | 'CIPHERTEXT_REJECTED'
  | 'ENCRYPTED_MODE_UNAVAILABLE'
  | 'PRODUCT_NOT_CALLABLE'
  | 'WRONG_PRODUCT_KIND'
  | 'CHANNEL_FROZEN'
  | 'CHANNEL_CLOSED'
  | 'CHANNEL_SUSPENDED'
  | 'CHANNEL_BEYOND_SCOPE'
  | 'CHANNEL_VOLUME_EXCEEDED'
  | 'NOT_HELD'
  | 'REGISTRATION_INCOMPLETE'
  | 'CHANGE_NEEDS_NEW_DATASET'
  | 'NO_CHANGE'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'TRIAL_BUSY'
  | 'ALREADY_OPEN'
  | 'TOO_MANY_OPEN_DEMANDS'
  | 'DATASET_NOT_IN_LICENCE'
  | 'COLUMN_CLASS_SUSPECT'
  | 'INTERNAL';

/** Codes of policy refusals (422): the analyser's codes and the job-level checks. Stable, like the rest. */
export type PolicyCode =
  | import('../analysis/analyse-query.js').RejectionCode
  | 'OVER_SCOPE'
  | 'BIND_ERROR'
  | 'CORE_DATA'
  | 'DP_REQUIRED'
  | 'BUDGET_EXHAUSTED'
  | 'NO_BUDGET'
  | 'DP_QUERY_SHAPE'
  | 'JOB_KIND_NOT_ALLOWED'
  | 'NO_DATA_VERSION'
  | 'PRODUCT_SPEC_INVALID'
  | 'NOT_SHAREABLE'
  | 'TRIAL_FAILED'
  | 'TRIAL_TIME_LIMIT';

const statusByCode: Record<ErrorCode, number> = {
  BAD_REQUEST: 400,
  VALIDATION_FAILED: 400,
  UNKNOWN_FIELD: 400,
  BODY_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOKEN_MISSING: 401,
  TOKEN_MALFORMED: 401,
  TOKEN_ALGORITHM_REFUSED: 401,
  TOKEN_UNKNOWN_KEY: 401,
  TOKEN_SIGNATURE_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_NOT_YET_VALID: 401,
  TOKEN_TOO_OLD: 401,
  TOKEN_CLAIM_MISSING: 401,
  TOKEN_WRONG_ISSUER: 401,
  TOKEN_WRONG_AUDIENCE: 401,
  TOKEN_WRONG_TYPE: 401,
  PRINCIPAL_UNKNOWN: 401,
  PRINCIPAL_DISABLED: 403,
  TOKEN_REVOKED: 401,
  SELF_DISABLE: 409,
  FORBIDDEN: 403,
  LICENCE_INACTIVE: 403,
  LICENCE_NOT_IN_FORCE: 409,
  CATALOGUE_CHANGED: 409,
  POLICY_CHANGED: 409,
  SHARING_WITHDRAWN: 409,
  NOT_FOUND: 404,
  CONFLICT: 409,
  DATASET_EXISTS: 409,
  VERSION_EXISTS: 409,
  SCHEMA_MISMATCH: 422,
  FILE_UNREADABLE: 422,
  INVALID_TRANSITION: 409,
  DEV_TOKENS_DISABLED: 403,
  RESULT_NOT_AVAILABLE: 409,
  SELF_REVIEW: 403,
  DUPLICATE_REVIEW: 409,
  RATE_LIMITED: 429,
  DAILY_QUOTA_EXCEEDED: 429,
  SUBJECT_QUOTA_EXCEEDED: 429,
  CONSUMER_THROTTLED: 429,
  PUBLIC_INTEREST_NOT_GRANTED: 403,
  CIPHERTEXT_REJECTED: 400,
  ENCRYPTED_MODE_UNAVAILABLE: 400,
  PRODUCT_NOT_CALLABLE: 409,
  WRONG_PRODUCT_KIND: 400,
  CHANNEL_FROZEN: 409,
  CHANNEL_CLOSED: 409,
  CHANNEL_SUSPENDED: 409,
  CHANNEL_BEYOND_SCOPE: 403,
  CHANNEL_VOLUME_EXCEEDED: 429,
  NOT_HELD: 403,
  REGISTRATION_INCOMPLETE: 422,
  CHANGE_NEEDS_NEW_DATASET: 409,
  NO_CHANGE: 400,
  IDEMPOTENCY_KEY_REUSED: 422,
  TRIAL_BUSY: 429,
  ALREADY_OPEN: 409,
  TOO_MANY_OPEN_DEMANDS: 409,
  DATASET_NOT_IN_LICENCE: 409,
  COLUMN_CLASS_SUSPECT: 422,
  INTERNAL: 500,
};

export type ErrorDetail = { path?: string; problem: string };

export class AppError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode | PolicyCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    /** Seconds until a refused call may be retried (429 responses carry it as Retry-After). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'AppError';
    this.status = statusByCode[code as ErrorCode] ?? 422;
  }

  toBody(): { error: { code: ErrorCode | PolicyCode; message: string; details?: ErrorDetail[] } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details.length ? { details: this.details } : {}) },
    };
  }
}

export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);
