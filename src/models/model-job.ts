import { z } from 'zod';
import { buildExecutionPlan, type ExecutionPlan } from '../analysis/execution-plan.js';
import type { QueryAnalysis } from '../analysis/analyse-query.js';
import type { SqlParser } from '../analysis/sql-parser.js';
import type { GradePolicy } from '../policy/disclosure-policy.js';
import { sqlIdentifier, sqlString } from '../duckdb/sql-literals.js';
import { AppError } from '../errors/app-error.js';
import { categoryValues, scoringInputNames } from '../products/client/scoring-features.js';

/**
 * Model jobs (job kind `model`): the operator's SQL selects training rows — which never leave DuckDB — and the
 * platform fits a linear or logistic regression from sufficient statistics computed as DuckDB aggregates over
 * them. Only coefficients, standard errors and fit statistics are released, after the grade's contributor
 * threshold and a minimum of residual degrees of freedom (docs/models.md).
 */
const identifier = z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, 'must be a column of the SELECT, in lower snake_case');

export const modelSpecSchema = z
  .strictObject({
    type: z.enum(['linear', 'logistic']),
    target: identifier,
    features: z.array(identifier).min(1).max(100),
    /**
     * Features that are categories, each with the values the operator names (public knowledge: a town list, a
     * code list), the first being the baseline. Each other value becomes a 0/1 feature `<feature>_<k>`; rows whose
     * value is not listed are left out, as rows with a missing value are.
     */
    categories: z.record(identifier, z.array(z.string().min(1).max(100).regex(/^[^\u0000-\u001f]+$/, 'has no control characters')).min(2).max(30)).optional(),
  })
  .refine((spec) => new Set([...spec.features, spec.target]).size === spec.features.length + 1, 'features and target must all differ')
  .refine((spec) => Object.keys(spec.categories ?? {}).every((feature) => spec.features.includes(feature)), { message: 'each category names one of the features', path: ['categories'] })
  .refine((spec) => Object.values(spec.categories ?? {}).every((values) => new Set(values).size === values.length), { message: "a category's values must all differ", path: ['categories'] });
export type ModelSpec = z.infer<typeof modelSpecSchema>;

/** A category's 0/1 features: which value each stands for, and the baseline the others are measured against. */
export type CategoryColumns = Record<string, { baseline: string; columns: Record<string, string> }>;
/** The model the platform fits: its categories expanded into 0/1 features (`expandCategories`), named here. */
export type FittedModelSpec = ModelSpec & { categoryColumns?: CategoryColumns };

/**
 * A model with categories, as the platform fits it: each categorical feature replaced by 0/1 features of its
 * values but the first, computed around the operator's SELECT (whose rows still never leave DuckDB), and the
 * columns the operator named. The values are the operator's own, quoted as SQL literals, never read from data.
 */
export function expandCategories(spec: ModelSpec, sql: string): { spec: FittedModelSpec; rowsSql: string } {
  if (!spec.categories || Object.keys(spec.categories).length === 0) return { spec, rowsSql: sql };
  const categoryColumns: CategoryColumns = {};
  const taken = new Set([spec.target, ...spec.features]);
  const select = [sqlIdentifier(spec.target)];
  const features: string[] = [];
  for (const feature of spec.features) {
    const values = spec.categories[feature];
    if (!values) {
      select.push(sqlIdentifier(feature));
      features.push(feature);
      continue;
    }
    const [baseline, ...others] = values as [string, ...string[]];
    const listed = values.map(sqlString).join(', ');
    categoryColumns[feature] = { baseline, columns: {} };
    others.forEach((value, index) => {
      const column = `${feature}_${index + 1}`.slice(0, 63);
      if (taken.has(column)) throw new AppError('VALIDATION_FAILED', `the 0/1 feature ${column} for ${feature} would have the name of another column`, [{ path: `model.categories.${feature}`, problem: 'rename the column it clashes with' }]);
      taken.add(column);
      categoryColumns[feature]!.columns[column] = value;
      // Null where the value is not listed: such rows are left out (WHERE … IS NOT NULL), not taken as the baseline.
      select.push(`CASE WHEN ${sqlIdentifier(feature)} IN (${listed}) THEN CAST(${sqlIdentifier(feature)} = ${sqlString(value)} AS INTEGER) END AS ${sqlIdentifier(column)}`);
      features.push(column);
    });
  }
  const { categories: _categories, ...rest } = spec;
  return { spec: { ...rest, features, categoryColumns }, rowsSql: `SELECT ${select.join(', ')} FROM (${sql}) AS categorised` };
}

/**
 * The model as the operator asked for it, from the one the platform fitted: each category's 0/1 features folded
 * back into the category (in the place of its first), with its values, baseline first — `expandCategories`
 * undone, read as a scoring product reads a category (products/client/scoring-features.ts).
 */
export function requestedModel(fitted: Pick<FittedModelSpec, 'type' | 'target' | 'features' | 'categoryColumns'>): ModelSpec {
  const categoryColumns = fitted.categoryColumns ?? {};
  const categories = Object.fromEntries(Object.entries(categoryColumns).map(([category, columns]) => [category, categoryValues(columns)]));
  return { type: fitted.type, target: fitted.target, features: scoringInputNames(fitted.features, categoryColumns), ...(Object.keys(categories).length > 0 ? { categories } : {}) };
}

export type ModelPlan = {
  kind: 'model';
  model: FittedModelSpec;
  /**
   * Count, Σxᵢ, Σxᵢxⱼ, Σxᵢy, Σy and Σy² over the training rows, planned as an aggregate job's one cell: a fitted
   * model gives its sufficient statistics away (with one feature, the coefficients and standard errors determine
   * Σy exactly), so they pass the same disclosure control as a table's cell — contributors per figure, dominance,
   * p %, the differencing guard — before anything is fitted.
   */
  statistics: ExecutionPlan;
  /** The operator's SELECT: logistic regression iterates over it with the current coefficients. */
  rowsSql: string;
};

const doubleColumnSql = (column: string) => `CAST(${sqlIdentifier(column)} AS DOUBLE)`;
/** Feature j of the design matrix: x₀ = 1 (the intercept), then the features in order. */
export const termNames = (model: ModelSpec) => ['(intercept)', ...model.features];

/** The aggregate query the analyser checks: it reads every training column the model needs, as sums. */
export function statisticsSql(model: ModelSpec, rowsSql: string): string {
  const x = (j: number) => doubleColumnSql(model.features[j - 1]!);
  const p = model.features.length;
  const items = ['count(*) AS n'];
  for (let i = 0; i <= p; i++) {
    for (let j = Math.max(i, 1); j <= p; j++) items.push(`sum(${i === 0 ? x(j) : `${x(i)} * ${x(j)}`}) AS m_${i}_${j}`);
  }
  const y = doubleColumnSql(model.target);
  items.push(`sum(${y}) AS v_0`);
  for (let j = 1; j <= p; j++) items.push(`sum(${x(j)} * ${y}) AS v_${j}`);
  items.push(`sum(${y} * ${y}) AS yy`);
  return `SELECT ${items.join(', ')} FROM (${rowsSql}) AS model_rows WHERE ${notNull(model)}`;
}

const notNull = (model: ModelSpec) => [model.target, ...model.features].map((column) => `${sqlIdentifier(column)} IS NOT NULL`).join(' AND ');

/** Plans the analysed statistics query like an aggregate job's, its figures unrounded (they are fitted, not released). */
export async function buildModelPlan(model: FittedModelSpec, rowsSql: string, analysis: QueryAnalysis, parser: SqlParser, grade: GradePolicy, bucketsPerThreshold: number): Promise<ModelPlan> {
  return { kind: 'model', model, statistics: await buildExecutionPlan(analysis, parser, grade, bucketsPerThreshold, { roundCounts: false }), rowsSql };
}

/**
 * One IRLS step's sums at coefficients β, built by the platform (never by the operator) around the operator's
 * analysed SELECT: H = Σ p(1−p)·x·xᵀ, g = Σ x·(y − p) and the log-likelihood.
 */
export function logisticStepSql(plan: ModelPlan, beta: number[]): string {
  const { model } = plan;
  const p = model.features.length;
  const columns = model.features.map((feature, index) => `${doubleColumnSql(feature)} AS x${index + 1}`);
  const eta = beta.map((b, j) => (j === 0 ? `(${literal(b)})` : `(${literal(b)}) * x${j}`)).join(' + ');
  const x = (j: number) => (j === 0 ? '1' : `x${j}`);
  const items = ['count(*) AS n'];
  for (let i = 0; i <= p; i++) for (let j = i; j <= p; j++) items.push(`sum(w * ${x(i)} * ${x(j)}) AS h_${i}_${j}`);
  for (let j = 0; j <= p; j++) items.push(`sum(${x(j)} * (y - q)) AS g_${j}`);
  // log(1 + exp(η)) computed stably for large |η|.
  items.push(`sum(y * eta - greatest(eta, 0) - ln(1 + exp(-abs(eta)))) AS loglik`);
  return `WITH model_rows AS (SELECT ${columns.join(', ')}, ${doubleColumnSql(model.target)} AS y FROM (${plan.rowsSql}) AS r WHERE ${notNull(model)}),
    scored AS (SELECT *, ${eta} AS eta FROM model_rows),
    weighted AS (SELECT *, 1 / (1 + exp(-eta)) AS q, (1 / (1 + exp(-eta))) * (1 - 1 / (1 + exp(-eta))) AS w FROM scored)
    SELECT ${items.join(', ')} FROM weighted`;
}

const literal = (value: number) => {
  if (!Number.isFinite(value)) throw new RangeError('a coefficient is not finite');
  return `CAST('${value}' AS DOUBLE)`;
};

