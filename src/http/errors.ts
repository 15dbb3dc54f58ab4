import { describeForLog } from '../errors/describe-for-log.js';
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
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
    // Thrown by @hono/zod-openapi before validation when the body's Content-Type is not one the route declares.
    if (error.status === 415) return c.json(new AppError('UNSUPPORTED_MEDIA_TYPE', 'this route takes a body of another media type (application/json unless the API reference says otherwise)').toBody(), 415);
  }
  // Logged with a reference the caller can quote; the text of the error stays on the server.
  const reference = crypto.randomUUID();
  console.error(`[pds] unexpected error ${reference}: ${describeForLog(error)}`);
  return c.json({ error: { code: 'INTERNAL', message: `internal error (reference ${reference})` } }, 500);
}

