import type { OutputOrder } from './output-order.js';
import type { DerivedColumns } from './derived-columns.js';
import type { GradePolicy } from '../policy/disclosure-policy.js';
import { CELL_COLUMN, cellHashOf, inMainCells, SKETCH_LAYOUT, SKETCH_SECRET_VARIABLE, sketchSql } from '../privacy/contributor-sketch.js';
import { isCountAggregate, type QueryAnalysis } from './analyse-query.js';
import { alias, allOf, call, comparison, integer, operator, sameExpression, text, tryToDouble } from './ast-builders.js';
import type { AstNode, SqlParser } from './sql-parser.js';
import type { SandboxQuery } from '../sandbox/sandbox-protocol.js';

/**
 * The SQL a sandbox runs for one job, every figure computed inside DuckDB:
 *  - the operator's query, with its group keys appended as hidden columns (`__pds_g_i`) and, for privacy
 *    units no measure needs, the number of distinct contributors per cell (`__pds_c_k`);
 *  - per privacy unit that SUM-like measures add up, one two-level query over the same FROM, WHERE and GROUP
 *    BY: per-contributor totals inside, then per cell the number of contributors (`__pds_c`), and for each
 *    measure the total and the largest contributions (`__pds_total_m`, `__pds_top_m`) for the dominance and
 *    p% rules. One query serves the threshold and the concentration rules of that unit.
 * Only per-cell figures come back to JavaScript, never rows.
 */
export type ExecutionPlan = {
  kind: QueryAnalysis['kind'];
  mainSql: string;
  groupKeyCount: number;
  /** Where each group key's value is in a main-query row: a visible column when the key is output as is, else a hidden one. */
  groupKeyPositions: number[];
  /**
   * With GROUPING SETS, ROLLUP or CUBE: where a main-query row's grouping level is (`__pds_level`, DuckDB's
   * grouping_id: bit k, counted from the last key, set where key k is rolled up into a total). A total's null key
   * is then told from a null value, in the cell's name and in the lines secondary suppression balances; unit
   * queries carry the same column. Plans before, and plans of one grouping set: none.
   */
  levelPosition?: number;
  visibleColumns: QueryAnalysis['outputColumns'];
  /** One entry per privacy unit of the outermost FROM (a dataset reached through one binding). */
  contributorDatasets: string[];
  /** Units whose contributors are counted by the main query, as `__pds_c_<index>`. */
  unitsCountedInMain: number[];
  /** Measures whose totals and largest contributions the main query computes (`__pds_total_m`, `__pds_top_m`). */
  measuresInMain: number[];
  unitQueries: Array<{ unitIndex: number; measureIndexes: number[]; sql: string }>;
  /** The unit (index into contributorDatasets) whose contributors each measure is weighed by. */
  measureUnits?: number[];
  /** Measures that add up only some of a cell's rows (analyse-query.ts, `Measure.selective`). Plans before: none. */
  selectiveMeasures?: number[];
  /**
   * Contributor sketches per cell for the differencing guard (src/privacy/contributor-sketch.ts), one query per
   * privacy unit of the outermost FROM; `threshold` is the grade's contributor threshold. Plans stored with an
   * earlier layout name none (or another), or sketch one unit only (no `units`), and are not run.
   */
  sketch?: { layout?: string; buckets: number; threshold: number; units?: SketchedSet[] };
  /** Fetch at most this many rows; one more than the policy's maximum, so "too many" can be detected. */
  rowLimit: number;
  /** The HAVING, ORDER BY and LIMIT applied to the checked output (QueryAnalysis.afterRelease). Plans before: none. */
  afterRelease?: OutputOrder;
  /** Window-function columns computed from the checked output, with the ORDER BY and LIMIT after them (QueryAnalysis.derived). */
  derived?: DerivedColumns;
  /** The last this many visible columns are a HAVING's figures, dropped after it (QueryAnalysis.hiddenOutputs). */
  hiddenOutputs?: number;
};

/**
 * One set the differencing guard sketches per cell: a unit's contributors to the cell, or, with `measure`, those
 * with a non-zero part in a selective figure (analyse-query.ts, `Measure.selective`) — a figure of some rows is a
 * set of its own, which another figure or cell, here or released before, may differ from by a few.
 */
export type SketchedSet = { unitIndex: number; dataset: string; sql: string; measure?: number };

export const hiddenGroupColumn = (index: number) => `__pds_g_${index}`;
/** A row's grouping level where the query has grouping sets (ExecutionPlan.levelPosition). */
export const LEVEL_COLUMN = '__pds_level';
/**
 * What DuckDB's grouping(keys…) gives on the rows of a grouping set that keeps the keys `kept`: a bit per key
 * named, the first the highest, set where the set rolls that key up. The row's level is grouping() of every key.
 */
export const groupingOf = (keys: readonly number[], kept: readonly number[]): number => keys.reduce((bits, key) => bits * 2 + (kept.includes(key) ? 0 : 1), 0);
/** Whether a row of grouping level `level` (of `keyCount` keys) rolls key `key` up: the inverse of `groupingOf`. */
export const isRolledUp = (level: number, keyCount: number, key: number): boolean => Math.floor(level / 2 ** (keyCount - 1 - key)) % 2 === 1;
/**
 * A row contributes to a measure when its value there is neither null nor zero. A cell can have many
 * contributors while one of its figures has few — `count(*) FILTER (WHERE diagnosis = …)`, `sum(x) FILTER (…)`,
 * `sum(CASE WHEN … THEN 1 ELSE 0 END)` are small tables hidden inside a large cell — so each figure's own
 * contributors (`__pds_n_m`) must meet the threshold too.
 */
const nonZero = (argument: AstNode): AstNode => comparison('COMPARE_NOTEQUAL', tryToDouble(argument), integer(0));

/** A row leaves a measure out when its value there is null or zero (the complement of `nonZero`). */
const zeroOrNull = (argument: AstNode): AstNode =>
  comparison('COMPARE_EQUAL', { class: 'OPERATOR', type: 'OPERATOR_COALESCE', alias: '', query_location: 0, children: [tryToDouble(argument), integer(0)] }, integer(0));

/**
 * Rounds every count inside an output expression to `base`, in DuckDB, before anything else is done with it.
 * Rounding only the finished value would let `count(*) * 1000` through exactly; counts in disguise (`sum(1)`,
 * `sum(x > 5)`) are counts here too. The disclosure checks read their own hidden counts, never these.
 */
function roundCounts(value: unknown, base: number): AstNode {
  if (Array.isArray(value)) return value.map((entry) => roundCounts(entry, base));
  if (!value || typeof value !== 'object') return value as AstNode;
  const node = value as AstNode;
  if (isCountAggregate(node)) {
    const rounded = { class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: call('round', [operator('/', [{ ...node, alias: '' }, integer(base)])]), cast_type: { id: 'BIGINT', type_info: null }, try_cast: false };
    return { ...operator('*', [rounded, integer(base)]), alias: node.alias };
  }
  // Every field, not only children: a case keeps its branches in case_checks, whose entries are not nodes.
  return Object.fromEntries(Object.entries(node).map(([key, field]) => [key, roundCounts(field, base)]));
}

/**
 * `roundCounts: false` is for figures that never leave as they are (a model's sufficient statistics, which are
 * checked like a one-cell table and then fitted): rounding them would only bias the fit.
 */
export async function buildExecutionPlan(analysis: QueryAnalysis, parser: SqlParser, grade: GradePolicy, bucketsPerThreshold = 4, options: { roundCounts?: boolean } = {}): Promise<ExecutionPlan> {
  const rowLimit = grade.maxOutputRows + 1;
  if (analysis.kind === 'row_level') {
    return {
      kind: 'row_level',
      mainSql: await parser.toSql(analysis.node),
      groupKeyCount: 0,
      groupKeyPositions: [],
      visibleColumns: analysis.outputColumns,
      contributorDatasets: [],
      unitsCountedInMain: [],
      measuresInMain: [],
      unitQueries: [],
      rowLimit,
    };
  }
  const groups = analysis.groupExpressions;
  const groupAliases = groups.map((group, index) => alias(group, hiddenGroupColumn(index)));
  // Grouping sets: every derived query groups by the same sets (with the unit added where it groups per unit), and
  // names each row's level, so that a total is a cell of its own, never merged with a group whose key is null.
  const groupSets = analysis.node.group_sets as number[][];
  const levels = groupSets.length > 1;
  const level = (): AstNode => ({ class: 'OPERATOR', type: 'GROUPING_FUNCTION', alias: '', query_location: 0, children: groups.map((group) => structuredClone(group)) });
  const levelColumn = levels ? [alias(level(), LEVEL_COLUMN)] : [];
  /** The grouping sets of a per-unit query: each set with the unit (at position `unitAt`) added. */
  const setsWithUnit = (unitAt: number) => (levels ? groupSets.map((set) => [...set, unitAt]) : [[...groups.keys(), unitAt]]);
  const unitIndex = (unit: QueryAnalysis['units'][number]) =>
    analysis.units.findIndex((candidate) => candidate.dataset === unit.dataset && candidate.binding === unit.binding);

  const measuresByUnit = new Map<number, number[]>();
  analysis.measures.forEach((measure, index) => {
    const key = unitIndex(measure.unit);
    measuresByUnit.set(key, [...(measuresByUnit.get(key) ?? []), index]);
  });
  // A unit proven to have one row per cell is counted and ranked from rows in the main query: no second pass.
  const unitsCountedInMain = analysis.units.map((_, index) => index).filter((index) => !measuresByUnit.has(index) || analysis.units[index]!.onePerCell);
  const measuresInMain = analysis.measures.map((_, index) => index).filter((index) => analysis.units[unitIndex(analysis.measures[index]!.unit)]!.onePerCell);
  const topN = Math.max(2, grade.dominance?.n ?? 2);
  const absolute = (node: AstNode) => call('abs', [structuredClone(node)]);
  const topOf = (node: AstNode): AstNode => call('max', [absolute(node), integer(topN)]);

  // A group key already output as a visible column is read from there; only the others are appended.
  const main = structuredClone(analysis.node);
  const visibleCount = main.select_list.length;
  const appended: AstNode[] = [];
  const groupKeyPositions = groups.map((group, index) => {
    const visible = (main.select_list as AstNode[]).findIndex((item) => sameExpression(item, group));
    if (visible >= 0) return visible;
    appended.push(groupAliases[index]!);
    return visibleCount + appended.length - 1;
  });
  // The differencing guard sketches the contributors of every protected unit. With sketches, each cell is also
  // named by a hash of its keys: the sketch queries group by that one integer instead of the keys themselves
  // (measured about a third faster), and the results are matched on it.
  const cellHash = analysis.units.length > 0
    ? [alias(call('hash', groups.length > 0 ? [...groups.map((group) => structuredClone(group)), ...(levels ? [level()] : [])] : [integer(0)]), CELL_COLUMN)]
    : [];
  const levelPosition = levels ? visibleCount + appended.length : undefined;
  main.select_list = [
    ...(grade.roundCountsTo && options.roundCounts !== false ? (main.select_list as AstNode[]).map((item) => roundCounts(item, grade.roundCountsTo!)) : main.select_list),
    ...appended,
    ...levelColumn,
    ...cellHash,
    ...unitsCountedInMain.map((index) => {
      const unit = analysis.units[index]!;
      // One row per contributor, read straight from the dataset (onePerCell), whose privacy unit is never null
      // (registration and loading refuse that): rows are contributors, and count(*) spares DuckDB reading the
      // unit column at all — ~110 ms of a 10 M-row job with text identifiers (bench/sandbox-overhead).
      if (unit.onePerCell) return alias(call('count_star', []), `__pds_c_${index}`);
      return alias(call('count', [structuredClone(unit.expression)], true), `__pds_c_${index}`);
    }),
    ...measuresInMain.flatMap((index) => [
      alias(call('sum', [absolute(analysis.measures[index]!.argument)]), `__pds_total_${index}`),
      alias(topOf(analysis.measures[index]!.argument), `__pds_top_${index}`),
      alias({ ...call('count_star', []), filter: nonZero(analysis.measures[index]!.argument) }, `__pds_n_${index}`),
    ]),
  ];
  const mainSql = await parser.toSql(main);

  const keys = groups.map((_, index) => hiddenGroupColumn(index));
  // What names a cell in a derived query's rows: its keys, and its level where there are grouping sets.
  const cellKeys = levels ? [...keys, LEVEL_COLUMN] : keys;
  const unitQueries: ExecutionPlan['unitQueries'] = [];
  for (const [index, measureIndexes] of measuresByUnit) {
    const unit = analysis.units[index]!;
    if (unit.onePerCell) continue;
    const inner = structuredClone(analysis.node);
    // A selective measure also counts, per contributor, the rows it leaves out: a contributor with any is one the
    // cell's plain total minus this figure is (partly) about (disclosure-control.ts, SMALL_COMPLEMENT).
    const selective = measureIndexes.filter((measure) => analysis.measures[measure]!.selective);
    inner.select_list = [
      ...groupAliases.map((group) => structuredClone(group)),
      ...structuredClone(levelColumn),
      ...measureIndexes.map((measure) => alias(call('sum', [structuredClone(analysis.measures[measure]!.argument)]), `__pds_v_${measure}`)),
      ...selective.map((measure) => alias({ ...call('count_star', []), filter: zeroOrNull(analysis.measures[measure]!.argument) }, `__pds_x_${measure}`)),
    ];
    inner.group_expressions = [...groups.map((group) => structuredClone(group)), structuredClone(unit.expression)];
    inner.group_sets = setsWithUnit(groups.length);
    inner.having = null;
    inner.modifiers = [];
    const select = [
      ...cellKeys,
      'count(*) AS __pds_c',
      ...measureIndexes.flatMap((measure) => [
        `sum(abs(__pds_v_${measure})) AS __pds_total_${measure}`,
        `max(abs(__pds_v_${measure}), ${topN}) AS __pds_top_${measure}`,
        `count(*) FILTER (WHERE __pds_v_${measure} <> 0) AS __pds_n_${measure}`,
      ]),
      ...selective.map((measure) => `count(*) FILTER (WHERE __pds_x_${measure} > 0) AS __pds_l_${measure}`),
    ].join(', ');
    unitQueries.push({
      unitIndex: index,
      measureIndexes,
      // Only the cells the main query returned (see CELLS_PARAMETER), so that a HAVING or LIMIT cannot push them
      // past the row limit and leave output cells without their contributor figures.
      sql: `SELECT * FROM (SELECT ${select} FROM (${await parser.toSql(inner)}) AS __pds_units${cellKeys.length > 0 ? ` GROUP BY ${cellKeys.join(', ')}` : ''}) AS __pds_cells WHERE ${inMainCells(cellHashOf(cellKeys))}`,
    });
  }

  // Sketches of every protected unit's contributors per cell, for the differencing guard. Sketching one would
  // leave the others open: a pair written once from enterprises and once from power readings would compare
  // sketches of different datasets, never each other's; a self-join's other side could exclude one person.
  let sketch: ExecutionPlan['sketch'];
  if (analysis.units.length > 0) {
    const buckets = grade.minContributors * bucketsPerThreshold;
    // The key mixes in a secret (set in the sandbox at run time, never stored with the job), so that keys differ
    // from one deployment to another. That alone would not protect stored sketches — DuckDB's hash combination
    // cancels under XOR — which is why the guard stores them encrypted (differencing-guard.ts).
    const secret = call('getvariable', [text(SKETCH_SECRET_VARIABLE)]);
    const sketchOf = async (unit: QueryAnalysis['units'][number], condition?: AstNode): Promise<string> => {
      const inner = structuredClone(analysis.node);
      // Where a contributor has several rows, its key also names which of them are in the set (the XOR of their
      // unique keys' hashes, or their number where no unique key is reachable): the same people with one reading
      // fewer are another set, or a WHERE dropping one row of one account would leave every key as it was.
      const rows = unit.rowKey ? call('bit_xor', [call('hash', unit.rowKey.map((column) => structuredClone(column)))]) : call('count_star', []);
      const key = call('hash', unit.onePerCell ? [structuredClone(unit.expression), structuredClone(secret)] : [structuredClone(unit.expression), structuredClone(secret), rows]);
      inner.select_list = [...groupAliases.map((group) => structuredClone(group)), ...structuredClone(levelColumn), alias(key, '__pds_k')];
      if (condition) inner.where_clause = inner.where_clause ? allOf([inner.where_clause, condition]) : condition;
      // One key per contributor and cell: rows already are, where the unique key proves it; else group by the unit.
      inner.group_expressions = unit.onePerCell ? [] : [...groups.map((group) => structuredClone(group)), structuredClone(unit.expression)];
      inner.group_sets = inner.group_expressions.length > 0 ? setsWithUnit(groups.length) : [];
      inner.having = null;
      inner.modifiers = [];
      return sketchSql(await parser.toSql(inner), cellKeys, buckets);
    };
    const units: SketchedSet[] = [];
    for (const [index, unit] of analysis.units.entries()) units.push({ unitIndex: index, dataset: unit.dataset, sql: await sketchOf(unit) });
    for (const [measure, { selective, argument, unit }] of analysis.measures.entries()) {
      if (selective) units.push({ unitIndex: unitIndex(unit), dataset: unit.dataset, measure, sql: await sketchOf(unit, nonZero(argument)) });
    }
    sketch = { layout: SKETCH_LAYOUT, buckets, threshold: grade.minContributors, units };
  }

  return {
    kind: 'aggregate',
    sketch,
    mainSql,
    groupKeyCount: groups.length,
    groupKeyPositions,
    ...(levelPosition === undefined ? {} : { levelPosition }),
    visibleColumns: analysis.outputColumns,
    contributorDatasets: analysis.units.map((unit) => unit.dataset),
    unitsCountedInMain,
    measuresInMain,
    unitQueries,
    measureUnits: analysis.measures.map((measure) => unitIndex(measure.unit)),
    selectiveMeasures: analysis.measures.flatMap((measure, index) => (measure.selective ? [index] : [])),
    rowLimit,
    ...(analysis.afterRelease ? { afterRelease: analysis.afterRelease } : {}),
    ...(analysis.derived ? { derived: analysis.derived } : {}),
    ...(analysis.hiddenOutputs ? { hiddenOutputs: analysis.hiddenOutputs } : {}),
  };
}

export const sketchQueryName = (set: Pick<SketchedSet, 'unitIndex' | 'measure'>) => `sketch:${set.unitIndex}${set.measure === undefined ? '' : `:m${set.measure}`}`;

/** The named queries a sandbox runs for a plan; results come back under the same names. */
export function sandboxQueries(plan: ExecutionPlan): SandboxQuery[] {
  return [
    { name: 'main', sql: plan.mainSql, rowLimit: plan.rowLimit },
    ...plan.unitQueries.map((query) => ({ name: `unit:${query.unitIndex}`, sql: query.sql, rowLimit: plan.rowLimit, cellsOf: 'main' })),
    ...(plan.sketch?.units ?? []).map((set) => ({ name: sketchQueryName(set), sql: set.sql, rowLimit: plan.rowLimit, cellsOf: 'main' })),
  ];
}
