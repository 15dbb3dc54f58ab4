import crypto from 'node:crypto';
import type { QueryResult } from '../sandbox/sandbox-protocol.js';
import type { DpPlan } from './dp-plan.js';
import { discreteLaplace, discreteLaplacePmf } from './exact-samplers.js';

/**
 * Turns the sandbox's exact per-cell figures into the released, differentially private output. Every cell of
 * the public domain is output (missing cells are zeros before noise). ε is split evenly over the noisy
 * statistics: one count per cell and one sum per summed column. With at most L rows per privacy unit, the L1
 * sensitivity of the count vector is L and of a sum vector L·max(|min|, |max|) (sums rounded to integers first).
 * Means are post-processing: noisy sum / noisy count. The noise is drawn once, here, and stored with the job.
 */
export type DpStatistic = { name: string; mechanism: 'discrete_laplace'; epsilon: number; sensitivity: number; scale: number; ci95HalfWidth: number };
export type DpOutput = {
  columns: Array<{ name: string; role: string }>;
  rows: unknown[][];
  manifest: {
    contentHash: string;
    rowCount: number;
    columnCount: number;
    differentialPrivacy: { epsilon: number; delta: 0; maxRowsPerUnit: number; statistics: DpStatistic[]; note: string };
    suppressedRows: [];
    suppressedByCode: Record<string, never>;
    roundedTo: null;
    grade: string;
    policyHash: string;
  };
};

/** The half-width k with P(|noise| ≤ k) ≥ 95 % for discrete Laplace of scale b. */
export function discreteLaplaceCi95(scale: number): number {
  let covered = discreteLaplacePmf(0, scale);
  let k = 0;
  while (covered < 0.95) {
    k += 1;
    covered += 2 * discreteLaplacePmf(k, scale);
  }
  return k;
}

export function applyDpNoise(plan: DpPlan, result: QueryResult, context: { grade: string; policyHash: string }): DpOutput {
  const position = (name: string) => result.columns.indexOf(name);
  const exact = new Map<string, unknown[]>();
  const keyPositions = plan.groupColumns.map((_, index) => position(`__pds_g_${index}`));
  for (const row of result.rows) exact.set(JSON.stringify(keyPositions.map((index) => row[index])), row);

  const summed = [...new Set(plan.aggregates.filter((aggregate) => aggregate.column).map((aggregate) => aggregate.column!))];
  const needsCount = plan.aggregates.some((aggregate) => aggregate.kind !== 'sum');
  const statisticCount = (needsCount ? 1 : 0) + summed.length;
  const epsilonShareMicro = Math.floor(plan.epsilonMicro / statisticCount);
  const statistics: DpStatistic[] = [];
  const noiseFor = (name: string, sensitivity: number) => {
    const scale = sensitivity / (epsilonShareMicro / 1_000_000);
    statistics.push({ name, mechanism: 'discrete_laplace', epsilon: epsilonShareMicro / 1_000_000, sensitivity, scale, ci95HalfWidth: discreteLaplaceCi95(scale) });
    // scale = sensitivity · 10⁶ / ε-share in micro-units, as an exact rational.
    return () => Number(discreteLaplace({ numerator: BigInt(sensitivity) * 1_000_000n, denominator: BigInt(epsilonShareMicro) }));
  };
  const countNoise = needsCount ? noiseFor('count', plan.maxRowsPerUnit) : undefined;
  const sumNoise = new Map(
    summed.map((column) => {
      const bounds = plan.aggregates.find((aggregate) => aggregate.column === column)!.bounds!;
      return [column, noiseFor(`sum(${column})`, plan.maxRowsPerUnit * Math.ceil(Math.max(Math.abs(bounds.min), Math.abs(bounds.max))))] as const;
    }),
  );

  // Every combination of the public domains, in domain order.
  let cells: unknown[][] = [[]];
  for (const group of plan.groupColumns) cells = cells.flatMap((prefix) => group.domain.map((value) => [...prefix, value]));
  const rows = cells.map((keys) => {
    const found = exact.get(JSON.stringify(keys));
    const noisyCount = countNoise ? Number(found?.[position('__pds_n')] ?? 0) + countNoise() : 0;
    const noisySums = new Map(summed.map((column) => [column, Math.round(Number(found?.[position(`__pds_s_${column}`)] ?? 0)) + sumNoise.get(column)!()]));
    const row: unknown[] = new Array(plan.outputColumns.length).fill(null);
    plan.groupColumns.forEach((group, index) => {
      if (group.outputIndex !== null) row[group.outputIndex] = keys[index];
    });
    for (const aggregate of plan.aggregates) {
      if (aggregate.kind === 'count') row[aggregate.outputIndex] = noisyCount;
      else if (aggregate.kind === 'sum') row[aggregate.outputIndex] = noisySums.get(aggregate.column!)!;
      else row[aggregate.outputIndex] = noisyCount > 0 ? noisySums.get(aggregate.column!)! / noisyCount : null;
    }
    return row;
  });
  const columns = plan.outputColumns.map((column) => ({ name: column.name, role: column.role }));
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
        delta: 0,
        maxRowsPerUnit: plan.maxRowsPerUnit,
        statistics,
        note: 'Each figure is the true value plus discrete Laplace noise; with 95 % probability the noise is within ±ci95HalfWidth. Means are noisy sum / noisy count.',
      },
      suppressedRows: [],
      suppressedByCode: {},
      roundedTo: null,
      grade: context.grade,
      policyHash: context.policyHash,
    },
  };
}
