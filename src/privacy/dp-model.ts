import type { QueryAnalysis } from '../analysis/analyse-query.js';
import type { AstNode, SqlParser } from '../analysis/sql-parser.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { AppError } from '../errors/app-error.js';
import { cholesky, choleskySolve, type Matrix } from '../models/linear-algebra.js';
import { termNames, type FittedModelSpec } from '../models/model-job.js';
import { call, columnRef, doubleConstant, operator, text, toDouble } from '../analysis/ast-builders.js';
import { boundedFiguresSql, clamped, clampOf, ctesOf, magnitude, resolveColumn, shapeError, sourcesOf, withResolution, type DpPlan, type DpRequest } from './dp-plan.js';

/**
 * Differentially private regression. The training rows' SELECT is the operator's, analysed like any job's (its rows
 * never leave DuckDB), and may read one protected dataset, joined with open data. Inside DuckDB each training column
 * is clamped to its bounds and each privacy unit's rows are capped at L; features and the target keep their
 * registered bounds (an operator may narrow them), and a column the SELECT computes needs the operator's.
 *
 * **Linear**, by sufficient statistics perturbation (Vu and Slavković 2009; Wang 2018): the count, Σx, Σxᵢxⱼ, Σxy,
 * Σy and Σy² get noise like any DP sum — the sensitivity of Σxᵢxⱼ is L·Bᵢ·Bⱼ with B = max(|min|, |max|) of the
 * clamp — and the normal equations are solved from the noisy sums.
 *
 * **Logistic**, by noisy Newton steps (the DP Newton method of Avella-Medina, Bradshaw and Loh 2023, with a fixed
 * number of steps): from β = 0, each step computes at the current β the gradient Σx(y − p) and the Hessian
 * Σp(1−p)·xxᵀ of the log-likelihood, each term of which a row moves by at most Bⱼ and Bᵢ·Bⱼ/4 (p lies in (0, 1),
 * the target is clamped to [0, 1]), adds noise, and takes the step β ← β + H⁻¹g. The budget is split evenly over
 * the steps; each β is computed from noisy figures only, so the steps compose like independent releases. The
 * first step, from zero, is the functional mechanism's quadratic approximation (Zhang et al. 2012); the later ones
 * correct it where probabilities are far from ½.
 *
 * Solving is post-processing, so the coefficients cost exactly the figures' ε (and δ). No standard errors are
 * released: the classical ones would ignore the noise.
 */
export async function buildDpModelPlan(
  analysis: QueryAnalysis,
  columnSpecs: Map<string, ColumnSpec[]>,
  parser: SqlParser,
  options: { maxRowsPerUnit: number; newtonSteps: number; model: FittedModelSpec } & DpRequest,
): Promise<DpPlan> {
  const { model } = options;
  const logistic = model.type === 'logistic';
  const node = analysis.node;
  if (analysis.units.length !== 1) throw shapeError("a model's training rows must come from one protected dataset (joined with open data if needed)");
  const [unit] = analysis.units;
  const sources = sourcesOf(node.from_table, ctesOf(node, new Map()));
  const used = new Set<string>();
  // The statistics query reads the training SELECT as `model_rows` (statisticsSql); its columns are the model's.
  const column = (name: string, fixed?: Bounds) => {
    const reference = columnRef(['model_rows', name]);
    const resolved = resolveColumn(reference, sources, columnSpecs);
    if (!resolved) throw shapeError(`the training rows have no column ${name}`);
    const bounds = fixed ?? clampOf(resolved, options.bounds, used, `the model's ${name}`);
    return { name, bounds, value: clamped(toDouble(reference), bounds), integral: Boolean(resolved.integral) };
  };
  const features = model.features.map((name) => column(name));
  // A feature whose bounds are one value is constant after clamping: collinear with the intercept, which the noise
  // would hide until the coefficients came out meaningless.
  for (const feature of features) {
    if (feature.bounds.min === feature.bounds.max) {
      throw new AppError('VALIDATION_FAILED', `the feature ${feature.name} has bounds of one value, so it is constant and collinear with the intercept`, [{ path: `privacy.bounds.${feature.name}`, problem: 'min equals max' }]);
    }
  }
  // A logistic target is 0 or 1; clamped to [0, 1], whatever else a row holds moves the gradient by at most Bⱼ.
  if (logistic && options.bounds?.[model.target.toLowerCase()]) {
    throw new AppError('VALIDATION_FAILED', 'the target of a logistic model is 0 or 1 and takes no bounds', [{ path: `privacy.bounds.${model.target.toLowerCase()}`, problem: 'a logistic target has the bounds 0..1' }]);
  }
  const target = column(model.target, logistic ? { min: 0, max: 1 } : undefined);
  for (const key of Object.keys(options.bounds ?? {})) {
    if (!used.has(key)) throw new AppError('VALIDATION_FAILED', `bounds were given for ${key}, which the model does not use`, [{ path: `privacy.bounds.${key}`, problem: 'not a feature or the target' }]);
  }
  const figures = logistic ? newtonStepFigures(features, target) : sufficientStatistics(features, target);
  const sql = await boundedFiguresSql(node, parser, { unit: unit!.expression, groups: [], figures, countsUnits: false, maxRowsPerUnit: options.maxRowsPerUnit });
  return {
    kind: 'dp_aggregate',
    dataset: unit!.dataset,
    budgetDatasets: [unit!.dataset],
    groupColumns: [],
    aggregates: [],
    sums: figures.map((figure) => withResolution({ column: figure.statistic, bounds: figure.bounds, statistic: figure.statistic, ...(figure.integral ? { integral: true } : {}) })),
    outputColumns: [
      { name: 'term', role: 'group_key' },
      { name: 'coefficient', role: 'dp_coefficient' },
    ],
    model: {
      type: model.type,
      target: model.target,
      features: model.features,
      ...(logistic ? { newtonSteps: options.newtonSteps } : {}),
      ...(model.categoryColumns ? { categoryColumns: model.categoryColumns } : {}),
    },
    maxRowsPerUnit: options.maxRowsPerUnit,
    partitionSelection: false,
    mechanism: options.mechanism,
    sql,
    epsilonMicro: options.epsilonMicro,
    deltaPico: options.deltaPico,
  };
}

type Bounds = { min: number; max: number };
type Term = { name: string; bounds: Bounds; value: AstNode; integral: boolean };
type Figure = { expression: AstNode; bounds: Bounds; statistic: string; integral: boolean };

const productBounds = (a: Bounds, b: Bounds): Bounds => {
  const corners = [a.min * b.min, a.min * b.max, a.max * b.min, a.max * b.max];
  return { min: Math.min(...corners), max: Math.max(...corners) };
};

/** A linear model's figures, in the order the fit reads them: Σxⱼ, Σxᵢxⱼ (i ≤ j), Σxⱼy, Σy, Σy². */
function sufficientStatistics(features: Term[], target: Term): Figure[] {
  const product = (a: Term, b: Term): Figure => ({
    expression: call('multiply', [a.value, b.value]),
    bounds: productBounds(a.bounds, b.bounds),
    statistic: a === b ? `sum(${a.name}²)` : `sum(${a.name}·${b.name})`,
    integral: a.integral && b.integral,
  });
  return [
    ...features.map((x) => ({ expression: x.value, bounds: x.bounds, statistic: `sum(${x.name})`, integral: x.integral })),
    ...features.flatMap((x, i) => features.slice(i).map((other) => product(x, other))),
    ...features.map((x) => product(x, target)),
    { expression: target.value, bounds: target.bounds, statistic: `sum(${target.name})`, integral: target.integral },
    product(target, target),
  ];
}

/** The sandbox variable holding coefficient j of the current Newton step (0: the intercept). */
export const betaVariable = (j: number) => `pds_beta_${j}`;

/**
 * One Newton step's figures at the coefficients in the sandbox variables, in the order the step reads them: the
 * gradient Σxⱼ(y − p) for j = 0 … p (x₀ = 1), then the Hessian's upper triangle Σp(1−p)·xᵢxⱼ, row by row.
 */
function newtonStepFigures(features: Term[], target: Term): Figure[] {
  const one: Term = { name: '1', bounds: { min: 1, max: 1 }, value: doubleConstant(1), integral: true };
  const terms = [one, ...features];
  const beta = (j: number) => toDouble(call('getvariable', [text(betaVariable(j))]));
  const eta = terms.map((x, j) => (j === 0 ? beta(0) : operator('*', [beta(j), structuredClone(x.value)]))).reduce((sum, term) => operator('+', [sum, term]));
  // p = 1 / (1 + e^(−η)); for a very negative η, e^(−η) is +∞ in DuckDB and p is 0, as it should be.
  const probability = operator('/', [doubleConstant(1), operator('+', [doubleConstant(1), call('exp', [operator('-', [eta])])])]);
  const weight = operator('*', [structuredClone(probability), operator('-', [doubleConstant(1), structuredClone(probability)])]);
  const residual = operator('-', [structuredClone(target.value), probability]);
  const name = (x: Term) => (x === one ? '' : x.name);
  const gradient = terms.map((x): Figure => {
    const largest = magnitude(x.bounds);
    return {
      expression: x === one ? structuredClone(residual) : operator('*', [structuredClone(x.value), structuredClone(residual)]),
      bounds: { min: -largest, max: largest },
      statistic: name(x) ? `sum(${x.name}·(${target.name} − p))` : `sum(${target.name} − p)`,
      integral: false,
    };
  });
  const hessian = terms.flatMap((x, i) =>
    terms.slice(i).map((other): Figure => {
      const { min, max } = productBounds(x.bounds, other.bounds);
      const factors = [name(x), name(other)].filter(Boolean);
      return {
        expression: [x, other].filter((term) => term !== one).reduce((product, term) => operator('*', [product, structuredClone(term.value)]), structuredClone(weight)),
        bounds: { min: Math.min(0, min / 4), max: Math.max(0, max / 4) },
        statistic: `sum(p(1−p)${factors.length === 2 && factors[0] === factors[1] ? `·${factors[0]}²` : factors.map((factor) => `·${factor}`).join('')})`,
        integral: false,
      };
    }),
  );
  return [...gradient, ...hessian];
}

/**
 * The step a Newton iteration takes from noisy figures (gradient, then the Hessian's upper triangle), or undefined
 * when the noisy Hessian is not positive definite.
 */
export function newtonStep(p: number, figures: number[]): number[] | undefined {
  const gradient = figures.slice(0, p + 1);
  const hessian: Matrix = Array.from({ length: p + 1 }, () => new Array<number>(p + 1).fill(0));
  let next = p + 1;
  for (let i = 0; i <= p; i++) for (let j = i; j <= p; j++) hessian[i]![j] = hessian[j]![i] = figures[next++]!;
  const factor = cholesky(hessian);
  const step = factor ? choleskySolve(factor, gradient) : undefined;
  return step?.every(Number.isFinite) ? step : undefined;
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
