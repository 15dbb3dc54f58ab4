import { z } from '@hono/zod-openapi';
import { AppError } from '../errors/app-error.js';

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'VALIDATION_FAILED' }),
      message: z.string(),
      details: z.array(z.object({ path: z.string().optional(), problem: z.string() })).optional(),
    }),
  })
  .openapi('Error');

const statusText: Record<number, string> = {
  400: 'Bad input (VALIDATION_FAILED, UNKNOWN_FIELD, BAD_REQUEST)',
  401: 'Not authenticated (TOKEN_* codes)',
  403: 'Not permitted (FORBIDDEN, LICENCE_INACTIVE, PRINCIPAL_DISABLED)',
  404: 'Not found, or not yours (NOT_FOUND)',
  409: 'Conflict with the current state',
  413: 'Body too large (BODY_TOO_LARGE)',
  415: 'Unsupported media type (UNSUPPORTED_MEDIA_TYPE)',
  422: 'Refused by a rule (SCHEMA_MISMATCH, FILE_UNREADABLE, policy codes)',
  429: 'Quota or throttle (RATE_LIMITED, DAILY_QUOTA_EXCEEDED, SUBJECT_QUOTA_EXCEEDED, CONSUMER_THROTTLED); see Retry-After',
};

/** The documented error responses of a route. Every route can answer 401 and 500 as well. */
export function errorResponses(...statuses: number[]) {
  return Object.fromEntries(
    [...new Set([...statuses, 401])].map((status) => [
      status,
      {
        description: statusText[status] ?? 'Error',
        ...(status === 429 ? { headers: { 'Retry-After': { description: 'Seconds to wait', schema: { type: 'integer' as const } } } } : {}),
        content: { 'application/json': { schema: errorBodySchema } },
      },
    ]),
  );
}

/** An error answer in an OpenAPI document amended after it is built (the Error schema by reference). */
export const documentedError = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

/**
 * Every operation that takes a JSON body also answers 415 (UNSUPPORTED_MEDIA_TYPE) to a body of another media type:
 * @hono/zod-openapi refuses it before validation, so the routes' own lists do not name it.
 */
export function withMediaTypeRefusals<T extends { paths?: Record<string, Record<string, any>> }>(document: T): T {
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      if (operation.requestBody?.content?.['application/json'] && operation.responses && !operation.responses['415']) {
        operation.responses['415'] = documentedError(statusText[415]!);
      }
    }
  }
  return document;
}

export const bearerSecurity = [{ bearerAuth: [] }];

/** The optional Idempotency-Key header of calls a client may need to retry (draft-ietf-httpapi-idempotency-key). */
export const idempotencyKey = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'visible ASCII characters only');
export const idempotencyKeyHeader = z.object({ 'idempotency-key': idempotencyKey.optional() });

export const jsonBody = <T extends z.ZodType>(schema: T, description: string) => ({
  required: true,
  description,
  content: { 'application/json': { schema } },
});

/** Shared data saved for a person's spreadsheet rather than a system: text that starts like a formula is defused. */
export const spreadsheetFlag = z
  .enum(['true', 'false'])
  .optional()
  .openapi({ description: "true: text values that start like a spreadsheet formula (= + - @) get a leading apostrophe, for a person who opens the file in a spreadsheet; default false: values exactly as stored, for systems" });

/**
 * The period a report route was asked for: `to` (exclusive) defaults to now, counted so that this instant is in it,
 * and `from` to what the route says (`defaultFrom`, given `to`). A period that ends before it starts is refused.
 */
export function requestedPeriod(query: { from?: string; to?: string }, now: Date, defaultFrom: (to: Date) => Date): { from: Date; to: Date } {
  const to = query.to ? new Date(query.to) : new Date(now.getTime() + 1);
  const from = query.from ? new Date(query.from) : defaultFrom(to);
  if (from >= to) throw new AppError('VALIDATION_FAILED', 'from must be before to', [{ path: 'from', problem: 'is not before to' }]);
  return { from, to };
}

/** The default start of a period of the last 30 days. */
export const thirtyDaysBefore = (to: Date) => new Date(to.getTime() - 30 * 86_400_000);
