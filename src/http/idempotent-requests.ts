import crypto from 'node:crypto';
import { and, eq, lt } from 'drizzle-orm';
import type { MiddlewareHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { Database } from '../db/connect.js';
import { requestReplays } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import type { AppEnv } from './app-env.js';
import { documentedError, idempotencyKey } from './openapi-common.js';

/**
 * Retries of state-changing requests (draft-ietf-httpapi-idempotency-key). A client that sends a POST or PUT with an
 * `Idempotency-Key` header and loses the answer sends it again with the same key and gets the first answer
 * (`Idempotent-Replayed: true`) instead of a second sharing request, dispute, registration or decision. The same
 * key with another request is IDEMPOTENCY_KEY_REUSED; while the first is still being answered, a retry gets 409
 * with Retry-After. Answers are kept a day, keyed by principal and key; only successful JSON answers are kept, so a
 * refused request is tried again. The routes in `ownRetries` keep their retries inside the transaction of what they
 * do, or must not keep an answer at all.
 *
 * The answer is kept after the route's own transaction commits: a process that stops in between leaves the key
 * pending, and after a minute a retry is taken as a new request. That window is the price of doing this once for
 * every route rather than inside each route's transaction.
 */
export const ownRetries = [
  /^\/v1\/jobs(\/dry-run|\/trial-run|\/estimate)?$/,
  /^\/v1\/operators\/[^/]+\/licences$/,
  /^\/v1\/products\/[^/]+\/(verify|verify-encrypted|score|score-encrypted)$/,
  // A token is never stored, not even sealed.
  /^\/v1\/tokens$/,
  // Deliveries are large and named by their content already (a repeated one is VERSION_EXISTS).
  /^\/v1\/datasets\/[^/]+\/versions$/,
];

const keptForMilliseconds = 24 * 3600_000;
const abandonedAfterMilliseconds = 60_000;
const largestKeptAnswer = 256 * 1024;

export const coveredByRequestReplays = (method: string, path: string) => (method === 'POST' || method === 'PUT') && path.startsWith('/v1/') && !ownRetries.some((route) => route.test(path));

export function idempotentRequests(deps: { db: Database; clock: () => Date }): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const key = c.req.header('idempotency-key');
    if (key === undefined || !coveredByRequestReplays(c.req.method, c.req.path)) return next();
    if (!idempotencyKey.safeParse(key).success) {
      throw new AppError('VALIDATION_FAILED', 'the Idempotency-Key header is not valid', [{ path: 'idempotency-key', problem: 'must be 1 to 200 visible ASCII characters' }]);
    }
    const url = new URL(c.req.url);
    const requestHash = crypto.createHash('sha256').update(`${c.req.method} ${url.pathname}${url.search}\n`).update(await c.req.text()).digest('hex');
    const row = { principalId: c.get('principal').id, idempotencyKey: key };
    const earlier = await claim(deps, row, requestHash);
    if (earlier) {
      c.header('Idempotent-Replayed', 'true');
      return c.body(earlier.body, earlier.status as ContentfulStatusCode, { 'content-type': 'application/json; charset=UTF-8' });
    }
    const thisRow = and(eq(requestReplays.principalId, row.principalId), eq(requestReplays.idempotencyKey, key));
    let kept = false;
    try {
      await next();
      const response = c.res;
      if (response.status >= 200 && response.status < 300 && (response.headers.get('content-type') ?? '').includes('json')) {
        const body = await response.clone().text();
        if (body.length <= largestKeptAnswer) {
          await deps.db.update(requestReplays).set({ state: 'done', status: response.status, body }).where(thisRow);
          kept = true;
        }
      }
    } finally {
      // Nothing to replay (refused, failed, or too large to keep): the key is free for the retry to be tried again.
      if (!kept) await deps.db.delete(requestReplays).where(and(thisRow, eq(requestReplays.state, 'pending'))).catch(() => undefined);
    }
  };
}

/**
 * Claims the key for this request (undefined), or returns the answer it already has. Refuses another request under
 * the key, and a retry while the first is still being answered.
 */
async function claim(deps: { db: Database; clock: () => Date }, row: { principalId: string; idempotencyKey: string }, requestHash: string): Promise<{ status: number; body: string } | undefined> {
  const thisRow = and(eq(requestReplays.principalId, row.principalId), eq(requestReplays.idempotencyKey, row.idempotencyKey));
  for (let attempt = 0; attempt < 3; attempt++) {
    const now = deps.clock();
    const fresh = { requestHash, state: 'pending' as const, status: null, body: null, createdAt: now, expiresAt: new Date(now.getTime() + keptForMilliseconds) };
    const [claimed] = await deps.db.insert(requestReplays).values({ ...row, ...fresh }).onConflictDoNothing().returning({ key: requestReplays.idempotencyKey });
    if (claimed) return undefined;
    const [existing] = await deps.db.select().from(requestReplays).where(thisRow);
    if (!existing) continue; // freed meanwhile
    const expired = existing.expiresAt <= now;
    const abandoned = existing.state === 'pending' && now.getTime() - existing.createdAt.getTime() > abandonedAfterMilliseconds;
    if (expired || abandoned) {
      // Taken over only if nobody else took it first (the row is as it was read).
      const [taken] = await deps.db.update(requestReplays).set(fresh).where(and(thisRow, eq(requestReplays.createdAt, existing.createdAt))).returning({ key: requestReplays.idempotencyKey });
      if (taken) return undefined;
      continue;
    }
    if (existing.requestHash !== requestHash) {
      throw new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different request; use a new key for a new request');
    }
    if (existing.state === 'done') return { status: existing.status!, body: existing.body! };
    throw new AppError('CONFLICT', 'a request with this Idempotency-Key is still being answered; send it again in a moment', [], 1);
  }
  throw new AppError('CONFLICT', 'this Idempotency-Key is changing hands; send the request again in a moment', [], 1);
}

/** Deletes kept answers past their day (the governance sweep). */
export async function purgeRequestReplays(db: Database, now: Date): Promise<void> {
  await db.delete(requestReplays).where(lt(requestReplays.expiresAt, now));
}

/**
 * Documents the header on every operation it covers (the routes do not declare it themselves), with the answers it
 * adds: 409 while the first request is being answered, 422 for a key sent with another request.
 */
export function withRequestReplays<T extends { paths?: Record<string, Record<string, any>> }>(document: T): T {
  for (const [path, operations] of Object.entries(document.paths ?? {})) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!coveredByRequestReplays(method.toUpperCase(), path)) continue;
      operation.parameters ??= [];
      if (!operation.parameters.some((parameter: { name?: string }) => parameter.name?.toLowerCase() === 'idempotency-key')) {
        operation.parameters.push({
          name: 'Idempotency-Key',
          in: 'header',
          required: false,
          description:
            'Send one (1–200 visible ASCII characters, new for each request) to retry safely: the same key with the same request answers, for a day, with the first answer (header Idempotent-Replayed: true) instead of doing it again; the same key with another request is IDEMPOTENCY_KEY_REUSED (422); while the first is still being answered, 409 with Retry-After.',
          schema: { type: 'string', minLength: 1, maxLength: 200, pattern: '^[\\x21-\\x7e]+$' },
        });
      }
      operation.responses ??= {};
      operation.responses['409'] ??= documentedError('Conflict (also: a request with this Idempotency-Key is still being answered)');
      operation.responses['422'] ??= documentedError('Refused by a rule (also IDEMPOTENCY_KEY_REUSED)');
    }
  }
  return document;
}
