import type { QueryAnalysis } from '../analysis/analyse-query.js';
import type { AstNode, SqlParser } from '../analysis/sql-parser.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { AppError } from '../errors/app-error.js';
import { cholesky, choleskySolve, type Matrix } from '../models/linear-algebra.js';
import { termNames, type ModelSpec } from '../models/model-job.js';
import { call } from '../analysis/execution-plan.js';
import { boundedFiguresSql, clamped, clampOf, ctesOf, resolveColumn, shapeError, sourcesOf, type DpPlan, type DpRequest } from './dp-plan.js';

/**
 * Differentially private linear regression by sufficient statistics perturbation (Vu and Slavković 2009; Wang
 * 2018): inside DuckDB each training column is clamped to its bounds and each privacy unit's rows are capped at L,
 * then the count, Σx, Σxᵢxⱼ, Σxy, Σy and Σy² get noise like any DP sum — the sensitivity of Σxᵢxⱼ is L·Bᵢ·Bⱼ with
 * B = max(|min|, |max|) of the clamp — and the normal equations are solved from the noisy sums. Solving is
 * post-processing, so the coefficients cost exactly the sums' ε (and δ). No standard errors are released: the
 * classical ones would ignore the noise.
 *
 * The training rows' SELECT is the operator's, analysed like any job's (its rows never leave DuckDB), and may read
 * one protected dataset, joined with open data. Features and target keep their registered bounds (an operator may
 * narrow them); a column the SELECT computes needs the operator's.
 */
export async function buildDpModelPlan(
  analysis: QueryAnalysis,
  columnSpecs: Map<string, ColumnSpec[]>,
  parser: SqlParser,
  options: { maxRowsPerUnit: number; model: ModelSpec } & DpRequest,
): Promise<DpPlan> {
  const { model } = options;
  if (model.type !== 'linear') throw shapeError('only linear models are trained with differential privacy (noisy sufficient statistics); logistic ones are not yet');
  const node = analysis.node;
  if (analysis.units.length !== 1) throw shapeError("a model's training rows must come from one protected dataset (joined with open data if needed)");
  const [unit] = analysis.units;
  const sources = sourcesOf(node.from_table, ctesOf(node, new Map()));
  const used = new Set<string>();
  // The statistics query reads the training SELECT as `model_rows` (statisticsSql); its columns are the model's.
  const column = (name: string) => {
    const reference: AstNode = { class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: ['model_rows', name] };
    const resolved = resolveColumn(reference, sources, columnSpecs);
    if (!resolved) throw shapeError(`the training rows have no column ${name}`);
    const bounds = clampOf(resolved, options.bounds, used, `the model's ${name}`);
    const value: AstNode = { class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: reference, cast_type: { id: 'DOUBLE', type_info: null }, try_cast: false };
    return { name, bounds, value: clamped(value, bounds), integral: Boolean(resolved.integral) };
  };
  const features = model.features.map(column);
  const target = column(model.target);
  for (const key of Object.keys(options.bounds ?? {})) {
    if (!used.has(key)) throw new AppError('VALIDATION_FAILED', `bounds were given for ${key}, which the model does not use`, [{ path: `privacy.bounds.${key}`, problem: 'not a feature or the target' }]);
  }

  type Term = ReturnType<typeof column>;
  const product = (a: Term, b: Term) => {
    const corners = [a.bounds.min * b.bounds.min, a.bounds.min * b.bounds.max, a.bounds.max * b.bounds.min, a.bounds.max * b.bounds.max];
    return {
      expression: call('multiply', [a.value, b.value]),
      bounds: { min: Math.min(...corners), max: Math.max(...corners) },
      statistic: a === b ? `sum(${a.name}²)` : `sum(${a.name}·${b.name})`,
      integral: a.integral && b.integral,
    };
  };
  // In the order the fit reads them: Σxⱼ, Σxᵢxⱼ (i ≤ j), Σxⱼy, Σy, Σy².
  const figures = [
    ...features.map((x) => ({ expression: x.value, bounds: x.bounds, statistic: `sum(${x.name})`, integral: x.integral })),
    ...features.flatMap((x, i) => features.slice(i).map((other) => product(x, other))),
    ...features.map((x) => product(x, target)),
    { expression: target.value, bounds: target.bounds, statistic: `sum(${target.name})`, integral: target.integral },
    product(target, target),
  ];
  const sql = await boundedFiguresSql(node, parser, { unit: unit!.expression, groups: [], figures, countsUnits: false, maxRowsPerUnit: options.maxRowsPerUnit });
  return {
    kind: 'dp_aggregate',
    dataset: unit!.dataset,
    budgetDatasets: [unit!.dataset],
    groupColumns: [],
    aggregates: [],
    sums: figures.map((figure) => ({ column: figure.statistic, bounds: figure.bounds, statistic: figure.statistic, ...(figure.integral ? { integral: true } : {}) })),
    outputColumns: [
      { name: 'term', role: 'group_key' },
      { name: 'coefficient', role: 'dp_coefficient' },
    ],
    model: { type: 'linear', target: model.target, features: model.features },
    maxRowsPerUnit: options.maxRowsPerUnit,
    partitionSelection: false,
    mechanism: options.mechanism,
    sql,
    epsilonMicro: options.epsilonMicro,
    deltaPico: options.deltaPico,
  };
}

/**
 * The coefficients solved from the noisy count and sums (in the plan's order), or why they cannot be: noise can
 * leave the normal equations without a solution when ε is small, the bounds wide or the rows few.
 */
export function fitNoisyLinearModel(
  model: NonNullable<DpPlan['model']>,
  count: number,
  sums: number[],
): { rows: unknown[][]; observations: number } | { withheld: { code: 'MODEL_COLLINEAR'; reason: string } } {
  const p = model.features.length;
  let next = 0;
  const take = () => sums[next++]!;
  const xtx: Matrix = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
  xtx[0]![0] = count;
  for (let j = 1; j <= p; j++) xtx[0]![j] = xtx[j]![0] = take();
  for (let i = 1; i <= p; i++) for (let j = i; j <= p; j++) xtx[i]![j] = xtx[j]![i] = take();
  const xty = [0, ...Array.from({ length: p }, take)];
  xty[0] = take();
  const factor = count > p + 1 ? cholesky(xtx) : undefined;
  const coefficients = factor ? choleskySolve(factor, xty) : [];
  if (!factor || !coefficients.every(Number.isFinite)) {
    return { withheld: { code: 'MODEL_COLLINEAR', reason: 'with the noise added, the normal equations have no stable solution: use a larger ε, narrower bounds or more training rows' } };
  }
  return { rows: termNames(model).map((term, j) => [term, coefficients[j]!]), observations: Math.max(0, Math.round(count)) };
}
