import crypto from 'node:crypto';
import type { QueryResult, SandboxFailureKind } from '../sandbox/sandbox-protocol.js';
import { consistentMargins } from './consistent-margins.js';
import type { ModelSummary } from '../models/train-model.js';
import { magnitude, wholeFigure, type DpPlan } from './dp-plan.js';
import { groupingOf, LEVEL_COLUMN } from '../analysis/execution-plan.js';
import { orderedPositions } from '../analysis/output-order.js';
import { withDerivedColumns, withDerivedNames } from '../analysis/derived-columns.js';
import { fitNoisyLinearModel, newtonStep } from './dp-model.js';
import { termNames } from '../models/model-job.js';
import { discreteGaussian, discreteLaplace, type Rational } from './exact-samplers.js';

/**
 * Turns the sandbox's exact per-cell figures into the released, differentially private output; the noise is drawn
 * once, here, and stored with the job.
 *
 * Budget split (basic composition): ε is divided evenly over the noisy statistics — one count vector, one sum
 * vector per summed column — and, when keys have no public domain, the partition selection. δ goes to partition
 * selection and to the Gaussian mechanism (half each when both need it). A logistic model's Newton steps split ε
 * evenly over every figure of every step (`logisticNoise`).
 *
 * Sensitivities, with at most L rows per privacy unit after the joins: a count vector changes by at most L in L1
 * and in L2 (all L rows in one cell is the worst case for L2), a sum vector by L·(⌈B·s⌉ + 1)/s with B = max(|min|,
 * |max|) of the clamp and s the steps per unit it is counted in (sums are rounded to whole steps first, which can
 * add one step in each of the unit's cells; L·⌈B⌉ for whole-number values, counted in whole units); a vector of
 * distinct units per cell by L in L1 and √L in L2 (a unit adds 1 to each of at most L cells). Laplace: discrete
 * Laplace with scale Δ₁/ε_i. Gaussian: the discrete Gaussian is ρ-zCDP with ρ = Δ₂²/2σ²; the Gaussian statistics
 * share ρ, chosen so that ρ + 2√(ρ·ln(1/δ)) = their ε (Bun and Steinke 2016, prop. 1.3). Means are post-processing:
 * noisy sum / noisy count (of the rows where the value is present, when it can be null), moved into the clamp's
 * bounds when the noise took it out.
 *
 * Partition selection (keys without a public domain): a unit is in at most L cells, so the vector of distinct
 * units per cell has L1 sensitivity L. A cell is released when its unit count plus discrete Laplace noise of scale
 * L/ε_sel reaches 1 + k, with k = ⌈(L/ε_sel)·ln(L/δ_sel)⌉: a cell only one unit holds appears with probability
 * below e^(−k·ε_sel/L) ≤ δ_sel/L, so across the unit's at most L cells below δ_sel.
 */
export type DpStatistic = { name: string; mechanism: 'discrete_laplace' | 'discrete_gaussian'; epsilon: number; sensitivity: number; scale: number; ci95HalfWidth: number };
export type PartitionSelection = { mechanism: 'laplace_threshold'; epsilon: number; delta: number; scale: number; threshold: number; cellsReleased: number };
export type DpOutput = {
  /** `ci95HalfWidth`: a count's or sum's 95 % half-width (every cell's figure has the same noise). */
  columns: Array<{ name: string; role: string; ci95HalfWidth?: number }>;
  rows: unknown[][];
  /** A DP model whose noisy equations had no stable solution: nothing is released. */
  withheld?: { code: 'MODEL_COLLINEAR' | 'MODEL_DID_NOT_CONVERGE'; reason: string };
  manifest: {
    model?: ModelSummary;
    /** With grouping sets: the rows that are totals, each with the keys it adds up over (as threshold outputs). */
    totals?: Array<{ row: number; over: string[] }>;
    contentHash: string;
    rowCount: number;
    columnCount: number;
    differentialPrivacy: {
      epsilon: number;
      delta: number;
      mechanism: string;
      maxRowsPerUnit: number;
      statistics: DpStatistic[];
      partitionSelection: PartitionSelection | null;
      note: string;
      /** With grouping sets: whether row counts and sums were made to add up after the noise (consistent-margins.ts). */
      consistentTotals?: boolean;
    };
    suppressedRows: [];
    suppressedByCode: Record<string, never>;
    roundedTo: null;
    grade: string;
    policyHash: string;
  };
};

/** The half-width k with P(|X| ≤ k) ≥ 95 % for discrete Laplace of scale t: P(|X| > k) = 2q^(k+1)/(1+q), q = e^(−1/t). */
export function discreteLaplaceCi95(scale: number): number {
  const q = Math.exp(-1 / scale);
  return Math.max(0, Math.ceil(-scale * Math.log((0.05 * (1 + q)) / 2) - 1));
}

/** zCDP ρ whose (ε, δ) conversion ρ + 2√(ρ·ln(1/δ)) equals ε. */
export function rhoFor(epsilon: number, delta: number): number {
  const logTerm = Math.log(1 / delta);
  return (Math.sqrt(logTerm + epsilon) - Math.sqrt(logTerm)) ** 2;
}

/** A positive float as a rational rounded up (more noise, never less), with a denominator of 10⁶. */
function roundedUp(value: number): Rational {
  return { numerator: BigInt(Math.ceil(value * 1_000_000)), denominator: 1_000_000n };
}

type NoiseFor = (name: string, sensitivity: number, l2Sensitivity?: number, unit?: number) => () => number;

/**
 * Integer-valued noise for statistics that each spend `epsilonShare` (Laplace) or `rhoEach` (Gaussian), each
 * described in `statistics` in the units of its figure (a figure counted in steps of 1/unit).
 */
function noiseMaker(budget: { gaussian: boolean; epsilonShare: number; rhoEach: number; statistics: DpStatistic[] }): NoiseFor {
  const { gaussian, epsilonShare, rhoEach, statistics } = budget;
  return (name, sensitivity, l2Sensitivity = sensitivity, unit = 1) => {
    if (gaussian) {
      const sigmaSquared = (l2Sensitivity * l2Sensitivity) / (2 * rhoEach);
      const sigma = Math.sqrt(sigmaSquared);
      statistics.push({ name, mechanism: 'discrete_gaussian', epsilon: epsilonShare, sensitivity: l2Sensitivity / unit, scale: sigma / unit, ci95HalfWidth: Math.ceil(1.96 * sigma) / unit });
      const variance = roundedUp(sigmaSquared);
      return () => Number(discreteGaussian(variance));
    }
    const scale = sensitivity / epsilonShare;
    statistics.push({ name, mechanism: 'discrete_laplace', epsilon: epsilonShare, sensitivity: sensitivity / unit, scale: scale / unit, ci95HalfWidth: discreteLaplaceCi95(scale) / unit });
    const exactScale = roundedUp(scale);
    return () => Number(discreteLaplace(exactScale));
  };
}

/** The names figures' noise is described under in the manifest (and a DP output's columns found by). */
const countStatistic = 'count';
const unitsStatistic = (column: string | undefined) => `count(DISTINCT ${column})`;
const sumStatistic = (sum: DpPlan['sums'][number]) => sum.statistic ?? `sum(${sum.column})`;

/**
 * A sum's noise, added to its exact value. The sum is counted in steps of 1/scale and rounded to a whole number of
 * them before the integer-valued noise; rounding moves two neighbours' sums apart by up to one step more than their
 * values do, in each of the unit's at most L cells: L·(⌈B·scale⌉ + 1) steps, with B = max(|min|, |max|) of the
 * clamp, unless the values are whole numbers already (L·⌈B⌉).
 */
function noisySum(sum: DpPlan['sums'][number], L: number, noiseFor: NoiseFor, name = sumStatistic(sum)): (exact: number) => number {
  const scale = sum.scale ?? 1;
  const whole = scale === 1 && wholeFigure(sum);
  const noise = noiseFor(name, L * (Math.ceil(magnitude(sum.bounds) * scale) + (whole ? 0 : 1)), undefined, scale);
  return (exact) => (Math.round(exact * scale) + noise()) / scale;
}

/**
 * The noise a DP aggregate's (or linear model's) release will draw, fixed by its plan before any data is read: each
 * statistic's mechanism, ε share, sensitivity, scale and 95 % half-width, the partition selection's threshold, and
 * the samplers. The dry run shows the same description (`expectedNoise`), so what an operator is told to expect is
 * what the release draws.
 */
function aggregateNoise(plan: DpPlan) {
  const L = plan.maxRowsPerUnit;
  const needsCount = Boolean(plan.model) || plan.aggregates.some((aggregate) => aggregate.kind === 'count' || ((aggregate.kind === 'avg' || aggregate.kind === 'variance') && aggregate.presentIndex === undefined));
  const units = plan.aggregates.find((aggregate) => aggregate.kind === 'units');
  const quantiles = plan.quantiles ?? [];
  const statisticCount = (needsCount ? 1 : 0) + (units ? 1 : 0) + plan.sums.length + quantiles.length;
  const shares = statisticCount + (plan.partitionSelection ? 1 : 0);
  // Grouping sets: each set's table gets 1/k of everything, since one unit is in a cell of every set.
  const sets = plan.groupSets?.length ?? 1;
  const epsilonShare = plan.epsilonMicro / 1_000_000 / shares / sets;
  const delta = plan.deltaPico / 1e12;
  const gaussian = plan.mechanism === 'gaussian';
  const selectionDelta = plan.partitionSelection ? (gaussian ? delta / 2 : delta) / sets : 0;
  const gaussianDelta = gaussian ? delta - selectionDelta * sets : 0;
  // The Gaussian statistics together spend ε_share × their number in each set; they split the ρ that the whole
  // Gaussian part of (ε, δ) buys (zCDP composes by adding ρ, across statistics and sets alike).
  const rhoEach = gaussian ? rhoFor(epsilonShare * statisticCount * sets, gaussianDelta) / (statisticCount * sets) : 0;

  const statistics: DpStatistic[] = [];
  const noiseFor = noiseMaker({ gaussian, epsilonShare, rhoEach, statistics });
  const countNoise = needsCount ? noiseFor(countStatistic, L) : undefined;
  // Distinct units: one unit adds at most 1 to each of at most L cells, so Δ₁ = L and Δ₂ = √L.
  const unitNoise = units ? noiseFor(unitsStatistic(units.column), L, Math.sqrt(L)) : undefined;
  const sumNoise = plan.sums.map((sum) => noisySum(sum, L, noiseFor));
  // A quantile's histogram is a count vector over its bins: a unit's L rows are each in one bin, Δ₁ = Δ₂ = L.
  const histogramNoise = quantiles.map((quantile) => noiseFor(`histogram for ${quantile.statistic} (${quantile.bins} bins)`, L));
  let selection: Omit<PartitionSelection, 'cellsReleased'> | null = null;
  if (plan.partitionSelection) {
    const scale = L / epsilonShare;
    const k = Math.ceil(scale * Math.log(L / selectionDelta));
    selection = { mechanism: 'laplace_threshold', epsilon: epsilonShare, delta: selectionDelta, scale, threshold: 1 + k };
  }
  return { statistics, countNoise, unitNoise, sumNoise, histogramNoise, selection, units, gaussian };
}

/**
 * Replaces the row counts and sums of every cell with the margins of their least-squares full table
 * (consistent-margins.ts), so that each total is the sum of its cells. The cells are the sets' in order, each set's
 * in domain order, as `applyDpNoise` lists them; quantiles and distinct units are left as drawn.
 */
function makeTotalsAddUp(plan: DpPlan, sets: number[][], drawn: Array<{ count: number; sums: number[] }>, hasCount: boolean): void {
  const domainSizes = plan.groupColumns.map((column) => column.domain!.length);
  const setSizes = sets.map((set) => set.reduce((product, key) => product * domainSizes[key]!, 1));
  const starts = setSizes.map((_, s) => setSizes.slice(0, s).reduce((total, size) => total + size, 0));
  const adjust = (read: (cell: { count: number; sums: number[] }) => number, write: (cell: { count: number; sums: number[] }, value: number) => void) => {
    const measured = sets.map((_, s) => Float64Array.from(drawn.slice(starts[s], starts[s]! + setSizes[s]!), read));
    consistentMargins(domainSizes, sets, measured).forEach((margin, s) => margin.forEach((value, cell) => write(drawn[starts[s]! + cell]!, value)));
  };
  if (hasCount) adjust((cell) => cell.count, (cell, value) => (cell.count = value));
  plan.sums.forEach((_, index) => adjust((cell) => cell.sums[index]!, (cell, value) => (cell.sums[index] = value)));
}

/**
 * What a DP plan's release will draw, told before it runs: the statistics' noise and, for keys without a public
 * domain, the partition selection's threshold. A logistic model's steps all draw the same noise: one step's figures
 * are told, with the number of steps.
 */
export function expectedNoise(plan: DpPlan): { statistics: DpStatistic[]; partitionSelection: Omit<PartitionSelection, 'cellsReleased'> | null; newtonSteps?: number; consistentTotals?: boolean } {
  if (plan.model?.type === 'logistic') {
    const oneStep = logisticNoise(plan, (_, statistic) => statistic).statistics.slice(0, plan.sums.length);
    return { statistics: oneStep, partitionSelection: null, newtonSteps: plan.model.newtonSteps! };
  }
  const { statistics, selection } = aggregateNoise(plan);
  // With grouping sets: whether the totals will be made to add up to their cells after the noise.
  return { statistics, partitionSelection: selection, ...(plan.groupSets ? { consistentTotals: Boolean(plan.consistentTotals) } : {}) };
}

export function applyDpNoise(plan: DpPlan, result: QueryResult, context: { grade: string; policyHash: string }): DpOutput {
  const position = (name: string) => result.columns.indexOf(name);
  const keyPositions = plan.groupColumns.map((_, index) => position(`__pds_g_${index}`));
  // Each table's cells by their keys, a table being one grouping set (plain GROUP BY: the one set of every key). A
  // row names its set by its level, grouping() of every key.
  const allKeys = plan.groupColumns.map((_, index) => index);
  const sets = plan.groupSets ?? [allKeys];
  const levelOf = (set: number[]) => groupingOf(allKeys, set);
  const setAt = new Map(sets.map((set) => [levelOf(set), set]));
  const levelAt = position(LEVEL_COLUMN);
  const exact = new Map<number, Map<string, unknown[]>>();
  for (const row of result.rows) {
    const level = levelAt >= 0 ? Number(row[levelAt]) : 0;
    let table = exact.get(level);
    if (!table) exact.set(level, (table = new Map()));
    table.set(JSON.stringify((setAt.get(level) ?? []).map((index) => row[keyPositions[index]!])), row);
  }

  const L = plan.maxRowsPerUnit;
  const { statistics, countNoise, unitNoise, sumNoise, histogramNoise, selection: threshold, units, gaussian } = aggregateNoise(plan);
  let selection: PartitionSelection | null = threshold ? { ...threshold, cellsReleased: 0 } : null;
  /** A set's cells: chosen by partition selection where one of its keys has no public domain, else every one. */
  const cellsOf = (set: number[]): unknown[][] => {
    if (threshold && set.some((index) => plan.groupColumns[index]!.domain === null)) {
      const unitsAt = position('__pds_units');
      const selectionScale = roundedUp(threshold.scale);
      const chosen = [...(exact.get(levelOf(set)) ?? [])]
        .filter(([, row]) => Number(row[unitsAt]) + Number(discreteLaplace(selectionScale)) >= threshold.threshold)
        .map(([keys]) => JSON.parse(keys) as unknown[])
        .sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
      selection!.cellsReleased += chosen.length;
      return chosen;
    }
    // Every combination of the public domains, in domain order, found in the data or not.
    let cells: unknown[][] = [[]];
    for (const index of set) cells = cells.flatMap((prefix) => plan.groupColumns[index]!.domain!.map((value) => [...prefix, value]));
    return cells;
  };
  const cells = sets.flatMap((set) => cellsOf(set).map((keys) => ({ set, keys })));

  /** A cell's figures plus their noise, drawn once. */
  const noisyCell = (set: number[], keys: unknown[]) => {
    const found = exact.get(levelOf(set))?.get(JSON.stringify(keys));
    return {
      count: countNoise ? Number(found?.[position('__pds_n')] ?? 0) + countNoise() : 0,
      units: unitNoise ? Number(found?.[position('__pds_units')] ?? 0) + unitNoise() : 0,
      sums: plan.sums.map((_, index) => sumNoise[index]!(Number(found?.[position(`__pds_s_${index}`)] ?? 0))),
      quantiles: (plan.quantiles ?? []).map((quantile, index) =>
        quantileOf(
          quantile,
          Array.from({ length: quantile.bins }, (_, k) => Number(found?.[position(`__pds_s_${quantile.firstFigure + k}`)] ?? 0) + histogramNoise[index]!()),
        ),
      ),
    };
  };
  let rows: unknown[][];
  let withheld: DpOutput['withheld'];
  let model: DpOutput['manifest']['model'];
  if (plan.model) {
    // One cell, the training rows: its noisy count and sums are the model's sufficient statistics.
    const cell = noisyCell([], []);
    const fitted = fitNoisyLinearModel(plan.model, cell.count, cell.sums);
    if ('withheld' in fitted) {
      withheld = fitted.withheld;
      rows = [];
    } else {
      rows = fitted.rows;
      model = { ...plan.model, observations: fitted.observations, residualDegreesOfFreedom: Math.max(0, fitted.observations - plan.model.features.length - 1) };
    }
  } else {
    const drawn = cells.map(({ set, keys }) => noisyCell(set, keys));
    if (plan.consistentTotals) makeTotalsAddUp(plan, sets, drawn, Boolean(countNoise));
    rows = cells.map(({ set, keys }, cellIndex) => {
      const { count: noisyCount, units: noisyUnits, sums: noisySums, quantiles: noisyQuantiles } = drawn[cellIndex]!;
      const row: unknown[] = new Array(plan.outputColumns.length).fill(null);
      // A key its set rolls up stays null: the manifest's totals say so, and grouping() where the query asks.
      set.forEach((index, position) => {
        const outputIndex = plan.groupColumns[index]!.outputIndex;
        if (outputIndex !== null) row[outputIndex] = keys[position];
      });
      for (const grouping of plan.groupingOutputs ?? []) row[grouping.outputIndex] = groupingOf(grouping.keys, set);
      for (const aggregate of plan.aggregates) {
        if (aggregate.kind === 'count') row[aggregate.outputIndex] = noisyCount;
        else if (aggregate.kind === 'units') row[aggregate.outputIndex] = noisyUnits;
        else if (aggregate.kind === 'sum') row[aggregate.outputIndex] = noisySums[aggregate.sumIndex!]!;
        else if (aggregate.kind === 'paired') row[aggregate.outputIndex] = noisyComoment(aggregate, noisySums);
        else if (aggregate.kind === 'variance') {
          const rows = aggregate.presentIndex === undefined ? noisyCount : noisySums[aggregate.presentIndex]!;
          row[aggregate.outputIndex] = noisySpread(aggregate, rows, noisySums[aggregate.sumIndex!]!, noisySums[aggregate.squareIndex!]!);
        } else {
          const denominator = aggregate.presentIndex === undefined ? noisyCount : noisySums[aggregate.presentIndex]!;
          // A mean of clamped values lies within the clamp: a noisy ratio outside it is moved to the nearer bound,
          // which can only bring it closer to the value (post-processing, no privacy spent).
          const { min, max } = aggregate.bounds!;
          row[aggregate.outputIndex] = denominator > 0 ? Math.min(max, Math.max(min, noisySums[aggregate.sumIndex!]! / denominator)) : null;
        }
      }
      (plan.quantiles ?? []).forEach((quantile, index) => (row[quantile.outputIndex] = noisyQuantiles[index]!));
      return row;
    });
  }
  const noun = gaussian ? 'discrete Gaussian' : 'discrete Laplace';
  const note = plan.model
    ? `The coefficients are solved from the noisy count and sums (Σx, Σxxᵀ, Σxy, Σy, Σy²), computed with each contributor bounded to ${L} rows and every value clamped to its bounds, plus ${noun} noise; they carry that noise, and no standard errors are given (the classical ones would ignore it).`
    : `Each figure is its value over the data with each contributor bounded to ${L} rows${units || plan.partitionSelection ? ` within at most ${L} cells` : ''} and summed values clamped to their bounds, plus ${noun} noise; ` +
      `with 95 % probability the noise is within the half-width given for each statistic (ci95HalfWidth)${gaussian ? ', by a normal approximation' : ''}. Means are a noisy sum over a noisy count (of the rows where the value is present, when it can be missing), kept within the bounds.` +
      (plan.aggregates.some((aggregate) => aggregate.kind === 'variance')
        ? ' Variances and standard deviations are (Σx² − (Σx)²/n)/(n − 1) (/n for var_pop and stddev_pop) from a noisy sum, sum of squares and count, kept between 0 and the largest the bounds allow.'
        : '') +
      (plan.aggregates.some((aggregate) => aggregate.kind === 'paired')
        ? ' Correlations, covariances and regression lines are computed from a noisy count, Σx, Σy, Σxy, Σx² and Σy² over the rows where both values are present, a correlation kept within ±1.'
        : '') +
      (plan.quantiles?.length ? ` Quantiles are read off a noisy histogram of ${plan.quantiles[0]!.bins} equal bins over their bounds, interpolated within a bin; they carry its noise and the bins' width.` : '') +
      (selection ? ' Rows are the keys whose noisy count of contributors reached the threshold; a key held by few contributors is unlikely to appear.' : '');
  const kept = orderedPositions(rows, plan);
  // Window functions are computed from the noisy output, then it is sorted and cut (derived-columns.ts).
  const derived = plan.derived ? withDerivedColumns(kept.map((index) => rows[index]!), plan.derived) : undefined;
  const order = derived ? derived.positions.map((position) => kept[position]!) : kept;
  // With grouping sets, the rows that are totals and the keys each adds up over (by output name, as threshold jobs).
  const keyName = (index: number) => {
    const outputIndex = plan.groupColumns[index]!.outputIndex;
    return outputIndex === null ? plan.groupColumns[index]!.name : plan.outputColumns[outputIndex]!.name;
  };
  const totals = plan.groupSets && !plan.model
    ? order.flatMap((index, row) => {
        const over = plan.groupColumns.flatMap((_, key) => (cells[index]!.set.includes(key) ? [] : [keyName(key)]));
        return over.length > 0 ? [{ row, over }] : [];
      })
    : undefined;
  const totalsNote = !totals
    ? ''
    : ` Each grouping set is a table of its own over the same bounded rows, noised with 1/${sets.length} of the job's privacy budget` +
      (plan.consistentTotals
        ? `; the tables were then made to add up (least squares, no further budget): row counts and sums of a total are the sums of its cells, over the rows whose keys are listed${units ? ', while distinct units are not, as one unit is in many cells' : ''}. Counts may then have fractions.`
        : ': a total is not the sum of its noisy cells.');
  return dpOutput(
    plan,
    derived ? derived.rows : order.map((index) => rows[index]!),
    { statistics, partitionSelection: selection, note: note + totalsNote, ...(totals ? { consistentTotals: Boolean(plan.consistentTotals) } : {}) },
    context,
    { model, withheld, totals },
  );
}

/**
 * A variance from noisy figures (post-processing): (Σx² − (Σx)²/n) / (n − 1) for a sample, / n for a population,
 * kept between 0 and the largest variance values within the bounds can have, (max − min)²/4 for a population and
 * that times n/(n − 1) for a sample (Popoviciu's inequality), which the noise can take it beyond; its square root
 * for a standard deviation. Null below two rows for a sample, below one for a population.
 */
export function noisySpread(aggregate: DpPlan['aggregates'][number], rows: number, sum: number, squares: number): number | null {
  const divisor = aggregate.population ? rows : rows - 1;
  if (!(divisor >= 1)) return null;
  const { min, max } = aggregate.bounds!;
  const variance = Math.min(((max - min) ** 2 / 4) * (rows / divisor), Math.max(0, (squares - (sum * sum) / rows) / divisor));
  return aggregate.root ? Math.sqrt(variance) : variance;
}

/**
 * A correlation, covariance or regression line of (a, b) from noisy figures over the rows where both are present
 * (post-processing). With n rows, Cab = Σab − ΣaΣb/n and Caa, Cbb likewise (kept ≥ 0), Cab is kept within
 * ±√(Caa·Cbb) (Cauchy–Schwarz: a correlation within ±1) and within n·(a's range)(b's range)/4. Then, as DuckDB
 * defines them: covar_pop Cab/n, covar_samp Cab/(n − 1), corr Cab/√(Caa·Cbb), regr_slope(a, b) Cab/Cbb,
 * regr_intercept(a, b) ā − slope·b̄, regr_r2 corr² (1 where a does not vary). Null below two rows, and where the
 * function divides by a spread that is zero.
 */
export function noisyComoment(aggregate: DpPlan['aggregates'][number], figures: number[]): number | null {
  const paired = aggregate.paired!;
  const [n, sa, sb, sab, saa, sbb] = [paired.count, paired.x, paired.y, paired.xy, paired.xx, paired.yy].map((index) => figures[index]!) as [number, number, number, number, number, number];
  if (!(n >= 2)) return null;
  const caa = Math.max(0, saa - (sa * sa) / n);
  const cbb = Math.max(0, sbb - (sb * sb) / n);
  const range = (bounds: { min: number; max: number }) => bounds.max - bounds.min;
  const limit = Math.min(Math.sqrt(caa * cbb), (n * range(paired.xBounds) * range(paired.yBounds)) / 4);
  const cab = Math.min(limit, Math.max(-limit, sab - (sa * sb) / n));
  switch (aggregate.pairedFunction) {
    case 'covar_pop':
      return cab / n;
    case 'covar_samp':
      return cab / (n - 1);
    case 'corr':
      return caa > 0 && cbb > 0 ? cab / Math.sqrt(caa * cbb) : null;
    case 'regr_slope':
      return cbb > 0 ? cab / cbb : null;
    case 'regr_intercept':
      return cbb > 0 ? sa / n - (cab / cbb) * (sb / n) : null;
    case 'regr_r2':
      return cbb > 0 ? (caa > 0 ? (cab * cab) / (caa * cbb) : 1) : null;
    default:
      return null;
  }
}

/**
 * A quantile read off a noisy histogram (post-processing): the value where the noisy counts, added up from the
 * lowest bin, reach q times their total, interpolated within that bin. Noisy counts may be negative; they are added
 * up as they are, so that the noise does not push quantiles towards the middle. Null when the noisy total is not
 * positive (no rows to speak of).
 */
function quantileOf(quantile: NonNullable<DpPlan['quantiles']>[number], bins: number[]): number | null {
  const total = bins.reduce((sum, count) => sum + count, 0);
  if (!(total > 0)) return null;
  const { min, max } = quantile.bounds;
  const width = (max - min) / bins.length;
  const target = quantile.q * total;
  let below = 0;
  for (const [k, count] of bins.entries()) {
    if (below + count >= target) return Math.min(max, Math.max(min, min + width * (k + (count > 0 ? (target - below) / count : 0))));
    below += count;
  }
  return max;
}

/** The released output and its manifest, from the noisy rows. */
function dpOutput(
  plan: DpPlan,
  rows: unknown[][],
  privacy: { statistics: DpStatistic[]; partitionSelection: PartitionSelection | null; note: string; consistentTotals?: boolean },
  context: { grade: string; policyHash: string },
  fit: { model?: ModelSummary; withheld?: DpOutput['withheld']; totals?: Array<{ row: number; over: string[] }> },
): DpOutput {
  // A count or sum output is one noisy statistic: its 95 % half-width goes with the column, so that a table read on
  // its own (a CSV) still says how far each figure may be from the truth. A mean is a ratio of two and has none.
  const statisticOf = (outputIndex: number) => {
    const aggregate = plan.model ? undefined : plan.aggregates.find((entry) => entry.outputIndex === outputIndex);
    if (aggregate?.kind === 'count') return countStatistic;
    if (aggregate?.kind === 'units') return unitsStatistic(aggregate.column);
    if (aggregate?.kind === 'sum') return sumStatistic(plan.sums[aggregate.sumIndex!]!);
    return undefined;
  };
  const columns = withDerivedNames<DpOutput['columns'][number]>(
    plan.outputColumns.map((column, outputIndex) => {
      const ci95HalfWidth = privacy.statistics.find((statistic) => statistic.name === statisticOf(outputIndex))?.ci95HalfWidth;
      return { name: column.name, role: column.role, ...(ci95HalfWidth === undefined ? {} : { ci95HalfWidth }) };
    }),
    plan.derived,
    (name) => ({ name, role: 'derived' }),
  );
  const contentHash = crypto.createHash('sha256').update(JSON.stringify({ columns: columns.map((column) => column.name), rows })).digest('hex');
  return {
    columns,
    rows,
    manifest: {
      contentHash,
      rowCount: rows.length,
      columnCount: columns.length,
      differentialPrivacy: {
        epsilon: plan.epsilonMicro / 1_000_000,
        delta: plan.deltaPico / 1e12,
        mechanism: plan.mechanism === 'gaussian' ? 'discrete_gaussian' : 'discrete_laplace',
        maxRowsPerUnit: plan.maxRowsPerUnit,
        ...privacy,
      },
      suppressedRows: [],
      suppressedByCode: {},
      roundedTo: null,
      grade: context.grade,
      policyHash: context.policyHash,
      ...(fit.model ? { model: fit.model } : {}),
      ...(fit.totals ? { totals: fit.totals } : {}),
    },
    ...(fit.withheld ? { withheld: fit.withheld } : {}),
  };
}

/**
 * A logistic model's noise: every figure of every step spends an even share of ε (Laplace) or of the one zCDP ρ
 * that (ε, δ) buys (Gaussian), which composes across adaptively chosen steps (Bun and Steinke 2016, lemma 2.3).
 */
function logisticNoise(plan: DpPlan, name = (step: number, statistic: string) => `step ${step}: ${statistic}`) {
  const steps = plan.model!.newtonSteps!;
  const shares = steps * plan.sums.length;
  const epsilon = plan.epsilonMicro / 1_000_000;
  const gaussian = plan.mechanism === 'gaussian';
  const statistics: DpStatistic[] = [];
  const noiseFor = noiseMaker({ gaussian, epsilonShare: epsilon / shares, rhoEach: gaussian ? rhoFor(epsilon, plan.deltaPico / 1e12) / shares : 0, statistics });
  const stepNoise = Array.from({ length: steps }, (_, index) => plan.sums.map((sum) => noisySum(sum, plan.maxRowsPerUnit, noiseFor, name(index + 1, sum.statistic!))));
  return { statistics, stepNoise };
}

export type StepFailure = { ok: false; kind: SandboxFailureKind; internalDetail: string };

/**
 * A differentially private logistic regression: `newtonSteps` noisy Newton steps from β = 0 (src/privacy/dp-model.ts),
 * each running the plan's query at the current coefficients, its figures noised as `logisticNoise` says. A step
 * that fails ends the fit with its failure.
 */
export async function releaseDpLogisticModel(
  plan: DpPlan,
  runStep: (beta: number[], step: number) => Promise<{ ok: true; result: QueryResult } | StepFailure>,
  context: { grade: string; policyHash: string },
): Promise<{ ok: true; output: DpOutput } | StepFailure> {
  const model = plan.model!;
  const steps = model.newtonSteps!;
  const p = model.features.length;
  const L = plan.maxRowsPerUnit;
  const gaussian = plan.mechanism === 'gaussian';
  const { statistics, stepNoise } = logisticNoise(plan);
  const withheld = (code: NonNullable<DpOutput['withheld']>['code'], reason: string) => ({ model: undefined, withheld: { code, reason } });
  let beta = new Array<number>(p + 1).fill(0);
  let observations = 0;
  let fit: { model?: ModelSummary; withheld?: DpOutput['withheld'] } | undefined;
  for (let step = 1; step <= steps && !fit; step++) {
    const outcome = await runStep(beta, step);
    if (!outcome.ok) return outcome;
    const { columns, rows } = outcome.result;
    const figures = stepNoise[step - 1]!.map((noisy, index) => noisy(Number(rows[0]?.[columns.indexOf(`__pds_s_${index}`)] ?? 0)));
    // At β = 0 every row's p(1−p) is ¼: the first Hessian's corner, Σp(1−p), is a quarter of the rows' noisy count.
    if (step === 1) observations = Math.max(0, Math.round(4 * figures[p + 1]!));
    const delta = newtonStep(p, figures);
    if (!delta) {
      fit = withheld('MODEL_COLLINEAR', 'with the noise added, a Newton step had no stable solution: use a larger ε, narrower bounds or more training rows');
      break;
    }
    beta = beta.map((b, j) => b + delta[j]!);
    // A step this far is noise or a target the features separate; either way the coefficients mean nothing.
    if (!beta.every((b) => Math.abs(b) < 1e4)) fit = withheld('MODEL_DID_NOT_CONVERGE', 'the noisy Newton steps ran away (the noise, or a target the features separate): use a larger ε, narrower bounds or other features');
  }
  fit ??= {
    model: { type: 'logistic', target: model.target, features: model.features, observations, residualDegreesOfFreedom: Math.max(0, observations - p - 1), iterations: steps },
  };
  const rows = fit.withheld ? [] : termNames(model).map((term, j) => [term, beta[j]!]);
  const noun = gaussian ? 'discrete Gaussian' : 'discrete Laplace';
  const note =
    `The coefficients are ${steps} Newton steps from zero, each from the gradient Σx(y − p) and the Hessian Σp(1−p)xxᵀ at the step's coefficients, computed with each contributor bounded to ${L} rows, every feature clamped to its bounds and the target to 0..1, plus ${noun} noise ` +
    `(the budget split evenly over the steps); they carry that noise, are not iterated to convergence, and no standard errors are given (the classical ones would ignore it).`;
  return { ok: true, output: dpOutput(plan, rows, { statistics, partitionSelection: null, note }, context, fit) };
}
