import crypto from 'node:crypto';
import type { ExecutionPlan } from '../analysis/execution-plan.js';
import { hiddenGroupColumn, isRolledUp, LEVEL_COLUMN } from '../analysis/execution-plan.js';
import type { Grade } from '../catalog/grades.js';
import type { GradePolicy } from '../policy/disclosure-policy.js';
import type { QueryResult } from '../sandbox/sandbox-protocol.js';
import { orderedPositions } from '../analysis/output-order.js';
import { withDerivedColumns, withDerivedNames } from '../analysis/derived-columns.js';

/**
 * Output disclosure control: decides, cell by cell, what of a job's output may leave the domain.
 *
 * Primary suppression per output row (a row is one cell of the table; all its aggregate values go together,
 * since one can often be derived from another): fewer distinct contributors than the grade's threshold, the
 * dominance (n, k) rule, the p% rule, and zeros where the grade says so. Then secondary suppression: along
 * every dimension of the table, a line (rows equal in all group keys but one) with exactly one suppressed row
 * gets a second one suppressed, so the first cannot be recovered as the line total minus the others.
 * Counts are rounded where the grade says so. Explanations never carry the figure that caused them.
 */

export type SuppressionCode = 'BELOW_THRESHOLD' | 'SMALL_COMPLEMENT' | 'DOMINANCE' | 'P_PERCENT' | 'ZERO_CELL' | 'DIFFERENCING' | 'SECONDARY_SUPPRESSION';

const reasons: Record<SuppressionCode, (grade: GradePolicy) => string> = {
  BELOW_THRESHOLD: (grade) => `fewer distinct contributors than the threshold of ${grade.minContributors}`,
  SMALL_COMPLEMENT: (grade) => `a figure leaves out fewer of the cell's contributors than the threshold of ${grade.minContributors}`,
  DOMINANCE: (grade) => `the largest ${grade.dominance?.n} contributors make up more than ${grade.dominance?.k}% of the value`,
  P_PERCENT: (grade) => `one contributor's value could be estimated within ${grade.pPercent}% by another`,
  ZERO_CELL: () => 'a zero in a table about people is withheld',
  DIFFERENCING: (grade) => `its contributors differ from those of an already released cell by fewer than ${grade.minContributors}`,
  SECONDARY_SUPPRESSION: () => 'withheld so that another withheld cell cannot be recovered from totals',
};

/** `derived`: a window function's column, computed from the released output (derived-columns.ts). */
export type OutputColumn = { name: string; role: ExecutionPlan['visibleColumns'][number]['role'] | 'derived' };
export type SuppressedRow = { row: number; code: SuppressionCode; reason: string };

export type CheckedOutput =
  | {
      outcome: 'released';
      columns: OutputColumn[];
      rows: unknown[][];
      manifest: OutputManifest;
      /** Positions in the main query's result of the cells released (output rows may be in another order). */
      releasedCells: number[];
    }
  | { outcome: 'withheld'; code: 'OUTPUT_TOO_LARGE' | 'NOTHING_RELEASABLE'; reason: string; manifest: OutputManifest };

export type OutputManifest = {
  contentHash: string | null;
  rowCount: number;
  columnCount: number;
  suppressedRows: SuppressedRow[];
  suppressedByCode: Partial<Record<SuppressionCode, number>>;
  roundedTo: number | null;
  grade: Grade;
  policyHash: string;
  /**
   * Where a HAVING, ORDER BY or LIMIT was applied after release (ExecutionPlan.afterRelease), or a QUALIFY or LIMIT
   * after window functions (ExecutionPlan.derived): the table disclosure control checked, before they kept some
   * rows — its rows and suppressions by code. The rows above are what was kept; incidents and the job's status read
   * these.
   */
  checkedTable?: { rowCount: number; suppressedByCode: Partial<Record<SuppressionCode, number>> };
  /**
   * With ROLLUP, CUBE or GROUPING SETS: the rows that are totals, each with the group keys it adds up over (their
   * null there means "all", not a null of the data). The level is the query's structure, not data; rows whose
   * keys are withheld are not listed.
   */
  totals?: Array<{ row: number; over: string[] }>;
};

/** Per measure: total, largest contributions, and how many contributors it has of its own (plans before: none). */
type CellStats = { contributors: number | null; measures: Map<number, { total: number; top: number[]; contributors?: number; leftOut?: number }> };

export function checkOutput(input: {
  plan: ExecutionPlan;
  results: QueryResult[];
  grade: GradePolicy;
  gradeName: Grade;
  policyHash: string;
  /** Rows the differencing guard flagged (src/privacy/differencing-guard.ts); suppressed before secondary suppression. */
  differencingRows?: Set<number>;
}): CheckedOutput {
  const { plan, grade } = input;
  const main = input.results.find((result) => result.name === 'main')!;
  const columns = plan.visibleColumns.map((column) => ({ name: column.name, role: column.role }));
  // A HAVING's own figures (ExecutionPlan.hiddenOutputs) are checked with the others and dropped after it.
  const shownWidth = columns.length - (plan.hiddenOutputs ?? 0);
  const baseManifest = { roundedTo: null, grade: input.gradeName, policyHash: input.policyHash, columnCount: plan.derived?.width ?? shownWidth };

  if (main.truncated || main.rows.length > grade.maxOutputRows) {
    return {
      outcome: 'withheld',
      code: 'OUTPUT_TOO_LARGE',
      reason: `the output has more than the ${grade.maxOutputRows} rows allowed for grade ${input.gradeName}`,
      manifest: { ...baseManifest, contentHash: null, rowCount: 0, suppressedRows: [], suppressedByCode: {} },
    };
  }

  // Visible columns come first in the main query's rows, in the operator's order.
  const rows = main.rows.map((row) => row.slice(0, columns.length));
  if (plan.kind === 'row_level') return released(columns, rows, [], null, baseManifest, [...rows.keys()]);

  const position = (result: QueryResult, name: string) => result.columns.indexOf(name);
  const keysOf = (result: QueryResult, groupPositions: number[]) =>
    result.rows.map((row) => JSON.stringify(groupPositions.map((index) => row[index] ?? null)));
  const stats = new Map<string, CellStats>();
  const cell = (key: string) => {
    let entry = stats.get(key);
    if (!entry) stats.set(key, (entry = { contributors: null, measures: new Map() }));
    return entry;
  };
  // Contributors per unit: from the main query for units it counts, from the unit queries for the others.
  const contributorsByUnit = new Map<string, number[]>();
  const setContributors = (key: string, unit: number, count: number) => {
    const counts = contributorsByUnit.get(key) ?? plan.contributorDatasets.map(() => 0);
    counts[unit] = count;
    contributorsByUnit.set(key, counts);
  };
  const readMeasures = (result: QueryResult, keys: string[], measures: number[]) => {
    const positions = measures.map(
      (measure) =>
        [measure, position(result, `__pds_total_${measure}`), position(result, `__pds_top_${measure}`), position(result, `__pds_n_${measure}`), position(result, `__pds_l_${measure}`)] as const,
    );
    result.rows.forEach((row, index) => {
      for (const [measure, total, top, contributors, leftOut] of positions) {
        cell(keys[index]!).measures.set(measure, {
          total: Number(row[total] ?? 0),
          top: ((row[top] as number[] | null) ?? []).map(Number).sort((a, b) => b - a),
          ...(contributors >= 0 ? { contributors: Number(row[contributors] ?? 0) } : {}),
          ...(leftOut >= 0 ? { leftOut: Number(row[leftOut] ?? 0) } : {}),
        });
      }
    });
  };

  // With grouping sets a cell is named by its level too: a total's null key is not a null value's.
  const keys = keysOf(main, plan.levelPosition === undefined ? plan.groupKeyPositions : [...plan.groupKeyPositions, plan.levelPosition]);
  const unitPositions = plan.unitsCountedInMain.map((unit) => [unit, position(main, `__pds_c_${unit}`)] as const);
  main.rows.forEach((row, index) => {
    for (const [unit, column] of unitPositions) setContributors(keys[index]!, unit, Number(row[column] ?? 0));
  });
  readMeasures(main, keys, plan.measuresInMain);
  for (const query of plan.unitQueries) {
    const result = input.results.find((candidate) => candidate.name === `unit:${query.unitIndex}`);
    if (!result) continue;
    const unitKeyColumns = Array.from({ length: plan.groupKeyCount }, (_, index) => position(result, hiddenGroupColumn(index)));
    const unitKeys = keysOf(result, plan.levelPosition === undefined ? unitKeyColumns : [...unitKeyColumns, position(result, LEVEL_COLUMN)]);
    const count = position(result, '__pds_c');
    result.rows.forEach((row, index) => setContributors(unitKeys[index]!, query.unitIndex, Number(row[count] ?? 0)));
    readMeasures(result, unitKeys, query.measureIndexes);
  }
  // Across joined datasets a cell is as safe as its smallest set of contributors (AWS Clean Rooms).
  for (const [key, counts] of contributorsByUnit) cell(key).contributors = Math.min(...counts);
  const selective = new Set(plan.selectiveMeasures ?? []);

  const suppressed = new Map<number, SuppressionCode>();
  const aggregateIndexes = columns.flatMap((column, index) => (column.role === 'group_key' ? [] : [index]));

  rows.forEach((row, index) => {
    const entry = stats.get(keys[index]!);
    const contributors = plan.contributorDatasets.length === 0 ? Number.POSITIVE_INFINITY : (entry?.contributors ?? 0);
    if (contributors < grade.minContributors) return void suppressed.set(index, 'BELOW_THRESHOLD');
    for (const [measureIndex, measure] of entry?.measures ?? []) {
      // A figure with contributors of its own, fewer than the threshold (none at all is a zero, below).
      if (measure.contributors !== undefined && measure.contributors > 0 && measure.contributors < grade.minContributors) {
        return void suppressed.set(index, 'BELOW_THRESHOLD');
      }
      // A figure of some rows that leaves out rows of a few of the cell's contributors: the cell's plain total
      // (this output's or any other's) minus it is about those few — `sum(x) FILTER (WHERE x < <the largest>)`.
      // Counted per contributor with any row left out (unit queries), or as the cell's rows less the figure's
      // where rows are contributors.
      if (measure.contributors !== undefined && selective.has(measureIndex)) {
        const left = measure.leftOut ?? (contributorsByUnit.get(keys[index]!)?.[plan.measureUnits?.[measureIndex] ?? 0] ?? 0) - measure.contributors;
        if (left > 0 && left < grade.minContributors) return void suppressed.set(index, 'SMALL_COMPLEMENT');
      }
      if (grade.dominance) {
        const topSum = measure.top.slice(0, grade.dominance.n).reduce((sum, value) => sum + value, 0);
        if (measure.total > 0 && topSum > (grade.dominance.k / 100) * measure.total) return void suppressed.set(index, 'DOMINANCE');
      }
      if (grade.pPercent !== null && measure.top.length > 0) {
        const [largest = 0, second = 0] = measure.top;
        const remainder = measure.total - largest - second;
        if (largest > 0 && remainder < (grade.pPercent / 100) * largest) return void suppressed.set(index, 'P_PERCENT');
      }
    }
    // A figure none of the cell's contributors has a part in says "nobody here": a zero, whatever its value
    // shows (`bool_or(c)` false, an average over no rows).
    const noneContribute = [...(entry?.measures.values() ?? [])].some((measure) => measure.contributors === 0);
    if (grade.zeros === 'suppress' && (noneContribute || aggregateIndexes.some((column) => row[column] === 0))) suppressed.set(index, 'ZERO_CELL');
  });

  for (const row of input.differencingRows ?? []) if (!suppressed.has(row)) suppressed.set(row, 'DIFFERENCING');

  if (suppressed.size > 0 && plan.groupKeyCount > 0) {
    // A key rolled up into a total is "all", not null: a subtotal sits in the line of the cells it adds up (the
    // other keys equal), and the grand total in the line of the subtotals — the table's margins, balanced like any
    // line.
    const keyParts = main.rows.map((row) => plan.groupKeyPositions.map((index, dimension) => (rolledUp(plan, row, dimension) ? '\u0000all' : JSON.stringify(row[index] ?? null))));
    const contributorsOf = (index: number) => stats.get(keys[index]!)?.contributors ?? 0;
    // Lines are fixed by the table; compute them once per dimension.
    const linesByDimension = Array.from({ length: plan.groupKeyCount }, (_, dimension) => {
      const lines = new Map<string, number[]>();
      keyParts.forEach((parts, index) => {
        const lineKey = parts.filter((_, position) => position !== dimension).join('\u0000');
        const members = lines.get(lineKey);
        if (members) members.push(index);
        else lines.set(lineKey, [index]);
      });
      return [...lines.values()].filter((members) => members.length >= 2);
    });
    let changed = true;
    while (changed) {
      changed = false;
      for (const lines of linesByDimension) {
        for (const members of lines) {
          let hiddenCount = 0;
          for (const index of members) if (suppressed.has(index)) hiddenCount++;
          if (hiddenCount !== 1) continue;
          const candidates = members.filter((index) => !suppressed.has(index)).sort((a, b) => contributorsOf(a) - contributorsOf(b) || a - b);
          suppressed.set(candidates[0]!, 'SECONDARY_SUPPRESSION');
          changed = true;
        }
      }
    }
  }

  // A suppressed cell's keys computed from a sensitive column or a quasi-identifier are withheld with its values,
  // and such rows go last: left among the others, a sorted output would place them between known values. Among
  // themselves they are ordered by what stays visible (their other keys, then their code), not as the query
  // sorted them, which could follow the withheld keys.
  const hiddenKeys = plan.visibleColumns.map((column) => column.hiddenWhenSuppressed === true);
  const keysHidden = (index: number) => suppressed.has(index) && hiddenKeys.includes(true);
  const visibleOf = (index: number) => JSON.stringify([rows[index]!.filter((_, column) => columns[column]!.role === 'group_key' && !hiddenKeys[column]), suppressed.get(index)]);
  const hiddenRows = [...rows.keys()].filter(keysHidden).sort((a, b) => (visibleOf(a) < visibleOf(b) ? -1 : visibleOf(a) > visibleOf(b) ? 1 : 0));
  const order = [...rows.keys()].filter((index) => !keysHidden(index)).concat(hiddenRows);
  const positionOf = new Map(order.map((index, position) => [index, position]));
  /** The suppressed cells among `cells` (rows of the main result, in output order), by their place there. */
  const suppressedRowsAt = (cells: number[]): SuppressedRow[] =>
    cells.flatMap((index, row) => {
      const code = suppressed.get(index);
      return code ? [{ row, code, reason: reasons[code](grade) }] : [];
    });
  const listed = order.map((index) =>
    rows[index]!.map((value, column) => {
      if (columns[column]!.role === 'group_key') return keysHidden(index) && hiddenKeys[column] ? null : value;
      if (suppressed.has(index)) return null;
      if (columns[column]!.role === 'count' && grade.roundCountsTo && typeof value === 'number') {
        return Math.round(value / grade.roundCountsTo) * grade.roundCountsTo;
      }
      return value;
    }),
  );
  if (listed.length > 0 && suppressed.size === listed.length && aggregateIndexes.length > 0) {
    return {
      outcome: 'withheld',
      code: 'NOTHING_RELEASABLE',
      reason: 'every cell of the output was withheld by disclosure control',
      manifest: { ...manifestOf(columns, [], suppressedRowsAt(order), grade.roundCountsTo, baseManifest), contentHash: null, rowCount: listed.length },
    };
  }
  // A HAVING, ORDER BY and LIMIT on aggregates or sensitive keys filter and sort what is released, suppressed
  // cells having no values (QueryAnalysis.afterRelease): post-processing, which tells nothing more.
  let shown = plan.afterRelease ? orderedPositions(listed, plan.afterRelease).map((position) => order[position]!) : order;
  let output = shown.map((index) => listed[positionOf.get(index)!]!.slice(0, shownWidth));
  // Window functions are computed from what is released, then the output is sorted and cut (derived-columns.ts).
  if (plan.derived) {
    const derived = withDerivedColumns(output, plan.derived);
    [shown, output] = [derived.positions.map((position) => shown[position]!), derived.rows];
  }
  const outputColumns = withDerivedNames<OutputColumn>(columns.slice(0, shownWidth), plan.derived, (name) => ({ name, role: 'derived' }));
  const checked = released(outputColumns, output, suppressedRowsAt(shown), grade.roundCountsTo, baseManifest, shown.filter((index) => !suppressed.has(index)));
  const totals = totalsAt(plan, main.rows, columns, shown, keysHidden);
  // Whenever rows may be left out after the check (a HAVING, a QUALIFY, a LIMIT), the whole checked table is told:
  // its suppressions set the job's status and report a differencing attempt whether or not its cell is listed.
  const cut = plan.afterRelease || plan.derived?.qualify || plan.derived?.limit;
  const manifest = { ...checked.manifest, ...(totals ? { totals } : {}), ...(cut ? { checkedTable: { rowCount: listed.length, suppressedByCode: countedByCode(suppressedRowsAt(order)) } } : {}) };
  return { ...checked, manifest };
}

/** The rows of `cells` (main-query positions, in output order) that are totals, with the keys each rolls up. */
function totalsAt(plan: ExecutionPlan, mainRows: unknown[][], columns: OutputColumn[], cells: number[], keysHidden: (index: number) => boolean): OutputManifest['totals'] {
  if (plan.levelPosition === undefined) return undefined;
  // A key not output is named by its place among the GROUP BY's keys.
  const keyName = (dimension: number) => columns[plan.groupKeyPositions[dimension]!]?.name ?? `group key ${dimension + 1}`;
  return cells.flatMap((index, row) => {
    if (keysHidden(index)) return [];
    const over = plan.groupKeyPositions.flatMap((_, dimension) => (rolledUp(plan, mainRows[index]!, dimension) ? [keyName(dimension)] : []));
    return over.length > 0 ? [{ row, over }] : [];
  });
}

/** Whether a main-query row has group key `dimension` rolled up into a total. */
function rolledUp(plan: ExecutionPlan, row: unknown[], dimension: number): boolean {
  return plan.levelPosition !== undefined && isRolledUp(Number(row[plan.levelPosition] ?? 0), plan.groupKeyCount, dimension);
}

function released(
  columns: OutputColumn[],
  rows: unknown[][],
  suppressedRows: SuppressedRow[],
  roundedTo: number | null,
  base: Omit<OutputManifest, 'contentHash' | 'rowCount' | 'suppressedRows' | 'suppressedByCode' | 'roundedTo'> & { roundedTo: null },
  releasedCells: number[],
): CheckedOutput {
  return { outcome: 'released', columns, rows, manifest: manifestOf(columns, rows, suppressedRows, roundedTo, base), releasedCells };
}

export function manifestOf(
  columns: OutputColumn[],
  rows: unknown[][],
  suppressedRows: SuppressedRow[],
  roundedTo: number | null,
  base: { grade: Grade; policyHash: string; columnCount: number },
): OutputManifest {
  const suppressedByCode = countedByCode(suppressedRows);
  const contentHash = crypto.createHash('sha256').update(JSON.stringify({ columns: columns.map((column) => column.name), rows })).digest('hex');
  return { ...base, contentHash, rowCount: rows.length, suppressedRows, suppressedByCode, roundedTo };
}

function countedByCode(suppressedRows: SuppressedRow[]): Partial<Record<SuppressionCode, number>> {
  const counts: Partial<Record<SuppressionCode, number>> = {};
  for (const entry of suppressedRows) counts[entry.code] = (counts[entry.code] ?? 0) + 1;
  return counts;
}
