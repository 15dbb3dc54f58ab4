import type { Grade } from '../catalog/grades.js';
import { sandboxQueries } from '../analysis/execution-plan.js';
import { manifestOf, type OutputColumn, type OutputManifest, type SuppressionCode } from '../disclosure/disclosure-control.js';
import type { DisclosurePolicy, GradePolicy } from '../policy/disclosure-policy.js';
import type { SandboxPool } from '../sandbox/sandbox-pool.js';
import type { QueryResult, SandboxFailureKind } from '../sandbox/sandbox-protocol.js';
import { cholesky, choleskySolve, inverseDiagonal, type Matrix } from './linear-algebra.js';
import { logisticStepSql, termNames, type CategoryColumns, type ModelPlan } from './model-job.js';

/**
 * Fits a model job inside the domain: the sandbox returns sums over the training rows, this solves the normal
 * equations (linear) or iterates Newton–Raphson / IRLS steps (logistic), and the release checks run before
 * anything leaves. What leaves: one row per term (coefficient, standard error) and fit statistics.
 */
export type ModelCode =
  | 'MODEL_TOO_FEW_CONTRIBUTORS'
  | 'MODEL_DOMINATED'
  | 'MODEL_DIFFERENCING'
  | 'MODEL_TOO_FEW_DEGREES_OF_FREEDOM'
  | 'MODEL_COLLINEAR'
  | 'MODEL_DID_NOT_CONVERGE'
  | 'MODEL_TARGET_NOT_BINARY';

/** What a withheld statistics cell means for the model, with a reason that carries no figure. */
const statisticsRefusal = (code: SuppressionCode, grade: GradePolicy): { code: ModelCode; reason: string } => {
  switch (code) {
    case 'DOMINANCE':
    case 'P_PERCENT':
      return { code: 'MODEL_DOMINATED', reason: "a few contributors make up most of one of the sums the model is fitted from (the grade's dominance and p% rules)" };
    case 'DIFFERENCING':
      return { code: 'MODEL_DIFFERENCING', reason: `the contributors of the training rows, or of one of the model's sums, differ from those of an already released output by fewer than ${grade.minContributors}` };
    default:
      return { code: 'MODEL_TOO_FEW_CONTRIBUTORS', reason: `the training rows, or the rows one of the model's sums adds up or leaves out, come from fewer distinct contributors than the threshold of ${grade.minContributors}` };
  }
};

export type ModelSummary = {
  type: 'linear' | 'logistic';
  target: string;
  features: string[];
  observations: number;
  residualDegreesOfFreedom: number;
  rSquared?: number;
  residualStandardError?: number;
  deviance?: number;
  nullDeviance?: number;
  iterations?: number;
  /** A category's 0/1 features: which value each stands for, against which baseline. */
  categoryColumns?: CategoryColumns;
};

export type ModelManifest = OutputManifest & { model?: ModelSummary };

export type TrainedModel =
  | { outcome: 'released'; columns: OutputColumn[]; rows: unknown[][]; manifest: ModelManifest }
  | { outcome: 'withheld'; code: ModelCode; reason: string; manifest: ModelManifest }
  | { outcome: 'failed'; kind: SandboxFailureKind; internalDetail: string };

type RunQuery = (name: string, sql: string) => Promise<{ ok: true; result: QueryResult } | { ok: false; kind: SandboxFailureKind; internalDetail: string }>;

export async function trainModel(input: {
  plan: ModelPlan;
  pool: SandboxPool;
  jobId: string;
  snapshots: Array<{ datasetId: string; path: string }>;
  grade: GradePolicy;
  gradeName: Grade;
  policy: DisclosurePolicy;
  /** Sandbox variables (the differencing guard's sketch secret). */
  variables: Record<string, string>;
  /**
   * The disclosure control of the statistics cell (run-job: checkOutput with the differencing guard): the code
   * it was withheld with, or null when it passes.
   */
  checkStatistics: (results: QueryResult[]) => Promise<SuppressionCode | null>;
}): Promise<TrainedModel> {
  const { plan, grade } = input;
  const p = plan.model.features.length;
  let round = 0;
  const run: RunQuery = async (name, sql) => {
    const outcome = await input.pool.run({ jobId: `${input.jobId}#${round++}`, snapshots: input.snapshots, queries: [{ name, sql, rowLimit: 2 }], limits: grade.limits });
    return outcome.ok ? { ok: true, result: outcome.results[0]! } : { ok: false, kind: outcome.kind, internalDetail: outcome.internalDetail };
  };
  const base = { roundedTo: null, grade: input.gradeName, policyHash: input.policy.hash, columnCount: 3 };
  const withheld = (code: ModelCode, reason: string): TrainedModel => ({
    outcome: 'withheld',
    code,
    reason,
    manifest: { ...base, contentHash: null, rowCount: 0, suppressedRows: [], suppressedByCode: {} },
  });

  const stats = await input.pool.run({ jobId: `${input.jobId}#${round++}`, snapshots: input.snapshots, queries: sandboxQueries(plan.statistics), limits: grade.limits, variables: input.variables });
  if (!stats.ok) return { outcome: 'failed', kind: stats.kind, internalDetail: stats.internalDetail };
  // The checks that need no fit come first, and their reasons carry no figures.
  const suppressed = await input.checkStatistics(stats.results);
  if (suppressed) {
    const refusal = statisticsRefusal(suppressed, grade);
    return withheld(refusal.code, refusal.reason);
  }
  const main = stats.results.find((result) => result.name === 'main')!;
  const value = (name: string) => Number(main.rows[0]?.[main.columns.indexOf(name)] ?? 0);
  const n = value('n');
  const residualDf = n - (p + 1);
  if (residualDf < input.policy.models.minResidualDegreesOfFreedom) {
    return withheld('MODEL_TOO_FEW_DEGREES_OF_FREEDOM', `fewer than ${input.policy.models.minResidualDegreesOfFreedom} residual degrees of freedom (observations minus coefficients)`);
  }

  const xtx: Matrix = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
  for (let i = 0; i <= p; i++) {
    for (let j = i; j <= p; j++) {
      const entry = i === 0 && j === 0 ? n : value(`m_${i}_${j}`);
      xtx[i]![j] = entry;
      xtx[j]![i] = entry;
    }
  }
  const xty = Array.from({ length: p + 1 }, (_, j) => value(`v_${j}`));
  const sumY = xty[0]!;
  const yy = value('yy');
  const summary: ModelSummary = {
    type: plan.model.type,
    target: plan.model.target,
    features: plan.model.features,
    ...(plan.model.categoryColumns ? { categoryColumns: plan.model.categoryColumns } : {}),
    observations: n,
    residualDegreesOfFreedom: residualDf,
  };

  let coefficients: number[];
  let variances: number[];
  if (plan.model.type === 'linear') {
    const factor = cholesky(xtx);
    if (!factor) return withheld('MODEL_COLLINEAR', 'the features are collinear (one is a combination of others, or constant)');
    coefficients = choleskySolve(factor, xty);
    const rss = Math.max(0, yy - coefficients.reduce((sum, b, j) => sum + b * xty[j]!, 0));
    const sigma2 = rss / residualDf;
    variances = inverseDiagonal(factor).map((diagonal) => diagonal * sigma2);
    const tss = yy - (sumY * sumY) / n;
    summary.rSquared = tss > 0 ? 1 - rss / tss : 0;
    summary.residualStandardError = Math.sqrt(sigma2);
  } else {
    // For 0/1 targets y² = y, so the two sums agree exactly; anything else is not a binary outcome.
    if (Math.abs(yy - sumY) > 1e-9 * Math.max(1, yy)) return withheld('MODEL_TARGET_NOT_BINARY', 'logistic regression needs a target of 0 and 1 (or false and true)');
    // Collinear or constant features make every Newton step's Hessian (XᵀWX) singular as XᵀX is: said as such,
    // before any step runs, rather than as a fit that did not converge.
    if (!cholesky(xtx)) return withheld('MODEL_COLLINEAR', 'the features are collinear (one is a combination of others, or constant)');
    const fitted = await fitLogistic(plan, run, input.policy.models.maxIterations, p);
    if (fitted.failed) return { outcome: 'failed', kind: fitted.failed.kind, internalDetail: fitted.failed.internalDetail };
    if (!fitted.converged) return withheld('MODEL_DID_NOT_CONVERGE', 'the fit did not converge (for example the target is perfectly separated by the features)');
    coefficients = fitted.beta;
    variances = fitted.variances;
    const mean = sumY / n;
    summary.deviance = -2 * fitted.logLikelihood;
    summary.nullDeviance = mean <= 0 || mean >= 1 ? 0 : -2 * (sumY * Math.log(mean) + (n - sumY) * Math.log(1 - mean));
    summary.iterations = fitted.iterations;
  }
  if (!coefficients.every(Number.isFinite) || !variances.every((variance) => Number.isFinite(variance) && variance >= 0)) {
    return withheld('MODEL_COLLINEAR', 'the fit is numerically unstable (nearly collinear features)');
  }
  const columns: OutputColumn[] = [
    { name: 'term', role: 'group_key' },
    { name: 'coefficient', role: 'other_aggregate' },
    { name: 'std_error', role: 'other_aggregate' },
  ];
  const rows = termNames(plan.model).map((term, j) => [term, coefficients[j]!, Math.sqrt(variances[j]!)]);
  return { outcome: 'released', columns, rows, manifest: { ...manifestOf(columns, rows, [], null, base), model: summary } };
}

async function fitLogistic(plan: ModelPlan, run: RunQuery, maxIterations: number, p: number) {
  let beta = new Array<number>(p + 1).fill(0);
  for (let iteration = 1; iteration <= maxIterations; iteration++) {
    const step = await run('irls', logisticStepSql(plan, beta));
    if (!step.ok) return { converged: false as const, failed: step };
    const value = (name: string) => Number(step.result.rows[0]?.[step.result.columns.indexOf(name)] ?? 0);
    const hessian: Matrix = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
    for (let i = 0; i <= p; i++) {
      for (let j = i; j <= p; j++) {
        hessian[i]![j] = value(`h_${i}_${j}`);
        hessian[j]![i] = value(`h_${i}_${j}`);
      }
    }
    const gradient = Array.from({ length: p + 1 }, (_, j) => value(`g_${j}`));
    const factor = cholesky(hessian);
    if (!factor) return { converged: false as const };
    const delta = choleskySolve(factor, gradient);
    beta = beta.map((b, j) => b + delta[j]!);
    if (!beta.every((b) => Number.isFinite(b) && Math.abs(b) < 1e6)) return { converged: false as const };
    if (delta.every((d, j) => Math.abs(d) <= 1e-8 * (1 + Math.abs(beta[j]!)))) {
      // Standard errors from the information matrix at the solution (the last step moved it by < 1e-8).
      return { converged: true as const, beta, variances: inverseDiagonal(factor), logLikelihood: value('loglik'), iterations: iteration };
    }
  }
  return { converged: false as const };
}
