import { describeForLog } from '../errors/describe-for-log.js';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ZodError } from 'zod';
import { AppError } from '../errors/app-error.js';

/**
 * The one mapping from failures to HTTP. Domain errors carry their own stable code and a message written for
 * the caller; anything else is a bug or an outage, and the caller learns only that (no stack, SQL or path).
 */
export function errorResponse(error: unknown, c: Context): Response {
  if (error instanceof AppError) {
    if (error.retryAfterSeconds !== undefined) c.header('Retry-After', String(Math.max(1, Math.ceil(error.retryAfterSeconds))));
    return c.json(error.toBody(), error.status as 400);
  }
  if (error instanceof HTTPException) {
    if (error.status === 413) return c.json(new AppError('BODY_TOO_LARGE', 'the request body is too large').toBody(), 413);
    if (error.status === 400) return c.json(new AppError('BAD_REQUEST', 'the request body is not valid JSON').toBody(), 400);
    if (error.status === 401) return c.json(new AppError('TOKEN_MISSING', 'a bearer token is required').toBody(), 401);
  }
  // Logged with a reference the caller can quote; the text of the error stays on the server.
  const reference = crypto.randomUUID();
  console.error(`[pds] unexpected error ${reference}: ${describeForLog(error)}`);
  return c.json({ error: { code: 'INTERNAL', message: `internal error (reference ${reference})` } }, 500);
}

/** zod failures as data: the path and the rule broken, never the value that broke it. */
export function validationError(error: ZodError, where: string): AppError {
  const unknownKeys = error.issues.filter((issue) => issue.code === 'unrecognized_keys');
  if (unknownKeys.length > 0) {
    const keys = unknownKeys.flatMap((issue) => ('keys' in issue ? (issue.keys as string[]) : []));
    return new AppError(
      'UNKNOWN_FIELD',
      `unknown field(s) in the ${where}: ${keys.map((key) => key.slice(0, 64)).join(', ')}`,
      unknownKeys.map((issue) => ({ path: issue.path.join('.'), problem: 'unknown field' })),
    );
  }
  return new AppError(
    'VALIDATION_FAILED',
    `the ${where} is not valid`,
    error.issues.slice(0, 20).map((issue) => ({ path: issue.path.join('.') || '(root)', problem: safeIssueMessage(issue) })),
  );
}

function safeIssueMessage(issue: ZodError['issues'][number]): string {
  // zod's messages for enums and literals list the allowed options, which are ours; messages that would
  // quote the received value are replaced by the rule's name.
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${issue.expected}`;
    case 'invalid_value':
    case 'too_big':
    case 'too_small':
    case 'custom':
      return issue.message;
    case 'invalid_format':
      return `invalid ${issue.format}`;
    default:
      return issue.code.replaceAll('_', ' ');
  }
}
