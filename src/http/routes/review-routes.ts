import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { asc, eq, inArray } from 'drizzle-orm';
import { platformEntity } from '../../authz/entities.js';
import { entityRef } from '../../authz/policy-engine.js';
import { jobs, reviews } from '../../db/schema.js';
import { notFound } from '../../errors/app-error.js';
import { findJob, toJobView } from '../../jobs/submit-job.js';
import { releaseObstacles } from '../../release/release-job.js';
import { decideReview, reviewDecisionSchema } from '../../release/reviews.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses, jsonBody } from '../openapi-common.js';

const routes = {
  queue: createRoute({
    method: 'get',
    path: '/v1/reviews',
    tags: ['review'],
    summary: 'Held outputs waiting for review, with their SQL, manifest and output (regulators)',
    description:
      '`releaseBlocked` is set where an approval would be refused now — the licence the job ran under is not in force (`LICENCE_NOT_IN_FORCE`), a catalogue entry it was checked under changed (`CATALOGUE_CHANGED`) or the disclosure policy did (`POLICY_CHANGED`) — so that the reviewer withholds the output, or waits for a suspension to end.',
    security: bearerSecurity,
    responses: { 200: { description: 'The review queue', content: { 'application/json': { schema: z.object({ reviews: z.array(z.record(z.string(), z.unknown())) }) } } }, ...errorResponses(403) },
  }),
  decide: createRoute({
    method: 'post',
    path: '/v1/reviews/{job}',
    tags: ['review'],
    summary: 'Approve or withhold a held output, with a reason (regulators; never for your own operator; once per reviewer)',
    security: bearerSecurity,
    request: {
      params: z.object({ job: z.string().min(1).max(100).openapi({ param: { name: 'job', in: 'path' } }) }),
      body: jsonBody(reviewDecisionSchema, 'The decision'),
    },
    responses: { 200: { description: 'The job after the decision', content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } }, ...errorResponses(400, 403, 404, 409) },
  }),
};

export function reviewRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  const { authorizer, db } = platform;

  app.openapi(routes.queue, async (c) => {
    const principal = c.get('principal');
    await authorizer.require(principal, 'review:list', platformEntity);
    const held = await db.select().from(jobs).where(eq(jobs.status, 'in_review')).orderBy(asc(jobs.createdAt)).limit(200);
    const [decided, obstacles] = await Promise.all([
      held.length > 0 ? db.select().from(reviews).where(inArray(reviews.jobId, held.map((job) => job.id))) : [],
      releaseObstacles(platform, held, platform.clock()),
    ]);
    return c.json(
      {
        reviews: held.map((job) => {
          const own = decided.filter((review) => review.jobId === job.id);
          return {
            job: toJobView(job),
            sql: job.sql,
            manifest: job.manifest,
            output: job.output,
            approvals: own.filter((review) => review.decision === 'approve').length,
            reviewers: own.map((review) => review.reviewerId),
            canReview: principal.operatorId !== job.operatorId && principal.id !== job.submittedBy && !own.some((review) => review.reviewerId === principal.id),
            // Set when an approval would be refused now: the reviewer withholds it (or waits for a suspension to end).
            releaseBlocked: obstacles.get(job.id) ?? null,
          };
        }),
      },
      200,
    );
  });

  app.openapi(routes.decide, async (c) => {
    const principal = c.get('principal');
    const job = await findJob(platform, c.req.valid('param').job);
    if (!job) throw notFound('job');
    await authorizer.require(principal, 'review:decide', { uid: { type: 'Job', id: job.id }, attrs: { operator: entityRef('Operator', job.operatorId) }, parents: [] });
    const after = await decideReview(platform, principal, job.id, c.req.valid('json'));
    return c.json(toJobView(after), 200);
  });

  return app;
}
