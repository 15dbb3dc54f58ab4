import { z } from 'zod';
import { readPolicyFile } from './policy-file.js';
import { grades, type Grade } from '../catalog/grades.js';
import type { ColumnClass } from '../catalog/columns.js';

const aggregateName = z.enum([
  'count', 'count_distinct', 'sum', 'avg', 'stddev_samp', 'var_samp', 'bool_and', 'bool_or',
  'corr', 'covar_samp', 'covar_pop', 'regr_slope', 'regr_intercept', 'regr_r2',
]);
/** Aggregates of a pair of values (`corr(x, y)`): functions of the sums of x, y and x·y over the rows where both are present. */
export const pairedAggregates: ReadonlySet<AggregateName> = new Set(['corr', 'covar_samp', 'covar_pop', 'regr_slope', 'regr_intercept', 'regr_r2']);
export type AggregateName = z.infer<typeof aggregateName>;

const gradePolicySchema = z.strictObject({
  jobKinds: z.array(z.enum(['aggregate', 'row_level', 'model'])),
  rowLevelOutput: z.enum(['open_only', 'never']),
  minContributors: z.number().int().min(1),
  dominance: z.strictObject({ n: z.number().int().min(1).max(10), k: z.number().min(1).max(100) }).nullable(),
  pPercent: z.number().min(0).max(100).nullable(),
  zeros: z.enum(['release', 'suppress']),
  roundCountsTo: z.number().int().min(1).max(1000).nullable(),
  maxOutputRows: z.number().int().min(0),
  reviewers: z.number().int().min(0).max(2),
  differentialPrivacy: z.enum(['optional', 'required']),
  limits: z.strictObject({
    memoryMb: z.number().int().min(64).max(64 * 1024),
    threads: z.number().int().min(1).max(64),
    wallSeconds: z.number().min(0.1).max(3600),
  }),
});
export type GradePolicy = z.infer<typeof gradePolicySchema>;

const disclosurePolicySchema = z.strictObject({
  version: z.literal(1),
  scalarFunctions: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)),
  binningFunctions: z.array(z.string().regex(/^[a-z_][a-z0-9_]*$/)),
  aggregatesByClass: z.strictObject({
    direct_identifier: z.array(aggregateName),
    quasi_identifier: z.array(aggregateName),
    sensitive: z.array(aggregateName),
    attribute: z.array(aggregateName),
  }),
  differentialPrivacy: z.strictObject({ maxRowsPerUnit: z.number().int().min(1).max(1000), newtonSteps: z.number().int().min(1).max(20) }),
  differencingGuard: z.strictObject({ bucketsPerThreshold: z.number().int().min(1).max(10) }),
  probing: z.strictObject({ sameShapeJobsPerDay: z.number().int().min(2).max(1000) }),
  models: z.strictObject({
    minResidualDegreesOfFreedom: z.number().int().min(1),
    maxFeatures: z.number().int().min(1).max(100),
    maxIterations: z.number().int().min(1).max(100),
  }),
  grades: z.strictObject(Object.fromEntries(grades.map((grade) => [grade, gradePolicySchema])) as Record<Grade, typeof gradePolicySchema>),
});

export type DisclosurePolicy = z.infer<typeof disclosurePolicySchema> & {
  /** SHA-256 of the policy file's bytes: recorded with every decision so it can be traced to the exact rules. */
  hash: string;
  scalarFunctionSet: Set<string>;
  binningFunctionSet: Set<string>;
  aggregatesAllowed: (columnClass: ColumnClass, aggregate: AggregateName) => boolean;
};


export function loadDisclosurePolicy(file: string): DisclosurePolicy {
  const { data: policy, hash } = readPolicyFile(file, disclosurePolicySchema);
  return {
    ...policy,
    hash,
    scalarFunctionSet: new Set(policy.scalarFunctions),
    binningFunctionSet: new Set(policy.binningFunctions),
    aggregatesAllowed: (columnClass, aggregate) => policy.aggregatesByClass[columnClass].includes(aggregate),
  };
}
