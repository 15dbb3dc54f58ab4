import { dpQuantileFunctions, type CatalogueDataset, type QueryAnalysis } from '../analysis/analyse-query.js';
import { allOf, call, caseWhen, comparison, doubleConstant, integer, isNotNull, numericConstant, operator, sameExpression } from '../analysis/ast-builders.js';
import { itemName, outputConditionOf, outputOrderOf, type OutputOrder } from '../analysis/output-order.js';
import type { DerivedColumns } from '../analysis/derived-columns.js';
import { LEVEL_COLUMN } from '../analysis/execution-plan.js';
import type { AstNode, SqlParser } from '../analysis/sql-parser.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { AppError } from '../errors/app-error.js';
import type { OpenDomainReader } from './open-domains.js';
import { sqlString } from '../duckdb/sql-literals.js';
import { MAX_CONSISTENT_CELLS } from './consistent-margins.js';
import type { CategoryColumns } from '../models/model-job.js';
import { pairedAggregates, type AggregateName } from '../policy/disclosure-policy.js';

/**
 * Differentially private aggregates: COUNT, SUM, AVG and quantiles (read off a noisy histogram) over one protected
 * (non-open) dataset, optionally joined with open datasets and read directly or through CTEs and subqueries that
 * keep each row one person's (the analyser's rule for derived relations), grouped by columns with a public domain
 * in the catalogue (every combination is output, so no key held by one person can appear) or by any other column or
 * expression through DP partition selection (a key appears only if a noisy count of its privacy units clears a
 * threshold set by δ).
 *
 * Contributions are bounded **after the joins**: inside DuckDB the joined rows of each privacy unit of the
 * protected dataset are cut to `maxRowsPerUnit`, chosen at random, and summed values are clamped to the declared
 * bounds (or an operator's narrower ones; a column computed in a CTE has only the operator's). Open data needs no
 * protection and is the same in neighbouring inputs, so a join with it — of any multiplicity — changes nothing in
 * the sensitivity once the rows are bounded per unit.
 * Protected datasets may be joined with each other only on their privacy units (ON a.unit = b.unit): every joined
 * row then belongs to one unit value in all of them, the one cap bounds it, and the job spends its ε from each of
 * their budgets. Any other join of two protected datasets would need each one's units bounded separately, which
 * one row cap cannot do soundly (removing a unit of one shifts which rows of the other are kept); it is refused.
 */
export type DpMechanism = 'laplace' | 'gaussian';
export type DpAggregate = {
  outputIndex: number;
  /**
   * `units`: count(DISTINCT <privacy unit>), the people or enterprises in the cell. `variance`: var_samp, or its
   * square root (`root`, stddev_samp), from the noisy sum, the noisy sum of squares (`squareIndex`) and the count;
   * `population`: var_pop or stddev_pop, divided by n rather than n − 1.
   * `paired`: a co-moment of two columns (`pairedFunction`: corr, covar_samp …) from the noisy sums of `paired`.
   */
  kind: 'count' | 'units' | 'sum' | 'avg' | 'variance' | 'paired';
  sumIndex?: number;
  squareIndex?: number;
  root?: boolean;
  population?: boolean;
  pairedFunction?: string;
  /** Figures over the rows where both values are present: their count, Σx, Σy, Σxy, Σx², Σy² (x first, y second). */
  paired?: { count: number; x: number; y: number; xy: number; xx: number; yy: number; xBounds: { min: number; max: number }; yBounds: { min: number; max: number } };
  /** For a mean of a value that can be null: the sum figure counting the rows where it is present (its denominator). */
  presentIndex?: number;
  column?: string;
  bounds?: { min: number; max: number };
};
export type DpPlan = {
  kind: 'dp_aggregate';
  /** The protected dataset whose privacy unit is bounded. */
  dataset: string;
  /** Every protected dataset the job reads: each one's budget pays the job's ε and δ. */
  budgetDatasets?: string[];
  groupColumns: Array<{ name: string; outputIndex: number | null; domain: Array<string | number | null> | null }>;
  /**
   * With ROLLUP, CUBE or GROUPING SETS: each set's group columns (indexes into `groupColumns`), in the order the
   * query gives them. Every set is a table of its own over the same bounded rows, so one unit is in a cell of each:
   * each table spends 1/k of ε and δ (basic composition; under the Gaussian, 1/k of the zCDP ρ). Plain GROUP BY
   * plans, and plans before it: none (one set of every column).
   */
  groupSets?: number[][];
  /**
   * With grouping sets whose keys all have public domains: the tables are made to add up by least squares after the
   * noise (consistent-margins.ts), over the rows whose keys are in their domains (a total is then the sum of the
   * cells listed). Plans before 29 November 2026 (session 24), and sets with a key chosen by partition selection:
   * none, each table stands alone.
   */
  consistentTotals?: true;
  /** The clamp bounds the operator gave (`privacy.bounds`, set by prepare-job.ts), to show and send again; plans before session 24: none. */
  requestedBounds?: Record<string, { min: number; max: number }>;
  /** `grouping(a, b)` outputs: which group columns each names, bit by bit from the first (1 where rolled up). */
  groupingOutputs?: Array<{ outputIndex: number; keys: number[] }>;
  aggregates: DpAggregate[];
  /**
   * Summed columns, in the order of their `__pds_s_<i>` figures. `integral`: every value is a whole number (a count,
   * an integer column), so the sum needs no rounding before the integer-valued noise; otherwise rounding can move a
   * cell's sum by one more than its values do. `scale`: the sum is multiplied by it before rounding and divided after
   * the noise, so that rounding adds 1/scale, not 1, to the sensitivity of figures whose rows are small
   * (`withResolution`); plans stored before it have none, and are noised in whole units as they were planned.
   */
  sums: Array<{ column: string; bounds: { min: number; max: number }; statistic?: string; integral?: boolean; scale?: number }>;
  outputColumns: Array<{ name: string; role: 'group_key' | 'dp_count' | 'dp_sum' | 'dp_mean' | 'dp_spread' | 'dp_quantile' | 'dp_coefficient' }>;
  /**
   * Medians and quantiles, each read off a noisy histogram of `bins` equal bins over its bounds: the histogram's
   * counts are the figures `__pds_s_<firstFigure + k>`, after the sums', and get noise as one count vector.
   */
  quantiles?: Array<{ outputIndex: number; column: string; statistic: string; q: number; bounds: { min: number; max: number }; firstFigure: number; bins: number }>;
  /**
   * A model instead of a table (src/privacy/dp-model.ts): a linear regression solved from the noisy sufficient
   * statistics, or a logistic one by `newtonSteps` noisy Newton steps from zero, `sql` then being one step's sums
   * at the coefficients in the sandbox variables `pds_beta_<j>`.
   */
  model?: { type: 'linear' | 'logistic'; target: string; features: string[]; newtonSteps?: number; categoryColumns?: CategoryColumns };
  maxRowsPerUnit: number;
  /** The outermost HAVING, ORDER BY and LIMIT, applied to the noisy output after the noise (post-processing). */
  having?: OutputOrder['having'];
  order?: OutputOrder['order'];
  limit?: OutputOrder['limit'];
  /** Window-function columns computed from the noisy output, with the ORDER BY and LIMIT after them (QueryAnalysis.derived). */
  derived?: DerivedColumns;
  /** True when a group key has no public domain: cells are chosen by DP partition selection. */
  partitionSelection: boolean;
  mechanism: DpMechanism;
  sql: string;
  epsilonMicro: number;
  deltaPico: number;
  /** The budget reservations, one per protected dataset (`chargeId` in plans stored before joins were supported). */
  chargeIds?: string[];
  chargeId?: string;
};

/** What an operator asked of a differentially private job, as the job view and the dry run show it. */
export function dpSummary(plan: Pick<DpPlan, 'epsilonMicro' | 'deltaPico' | 'mechanism' | 'requestedBounds'>) {
  return { epsilon: plan.epsilonMicro / 1e6, delta: plan.deltaPico / 1e12, mechanism: plan.mechanism, ...(plan.requestedBounds ? { bounds: plan.requestedBounds } : {}) };
}

export type DpRequest = { epsilonMicro: number; deltaPico: number; mechanism: DpMechanism; bounds?: Record<string, { min: number; max: number }> };


export function shapeError(detail: string): AppError {
  return new AppError(
    'DP_QUERY_SHAPE',
    `differentially private jobs support COUNT, count(DISTINCT privacy unit), SUM, AVG, standard deviations and variances, correlations, covariances and regression lines, and quantiles (median, quantile_cont) over one protected dataset (joined with open data, or with other protected datasets on their privacy units; read directly or through CTEs and subqueries), grouped by columns or expressions of them: ${detail}`,
  );
}

/** The CTEs a query defines, each with those it can see (the ones before it and around the query) and its column names. */
type Cte = { node: AstNode; scope: Ctes; aliases: string[] };
type Ctes = Map<string, Cte>;
/** What a name of a FROM clause reads: a dataset, or a derived relation (a CTE or a subquery). */
type Source = { kind: 'dataset'; dataset: string } | { kind: 'derived'; node: AstNode; scope: Ctes; columnAliases: string[] };
/**
 * A column of the FROM clause: its binding and name there and, where it is a registered column passed through
 * unchanged (directly, or as a plain column of CTEs and subqueries), that column's dataset and spec — whose public
 * domain and bounds then still hold. A column computed in a CTE has neither.
 */
export type ResolvedColumn = { binding: string; column: string; dataset?: string; spec?: ColumnSpec; neverNull?: boolean; integral?: boolean };

/** Column types whose values are whole numbers: their sums need no rounding, so no room for it in the sensitivity. */
export const wholeNumberType = /^(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|BOOLEAN)$/;

export function ctesOf(node: AstNode, outer: Ctes): Ctes {
  const ctes: Ctes = new Map(outer);
  for (const entry of node.cte_map?.map ?? []) {
    ctes.set(String(entry.key), { node: entry.value.query.node, scope: new Map(ctes), aliases: entry.value.aliases ?? [] });
  }
  return ctes;
}

/** The relations of a FROM clause: tables, CTEs and subqueries joined by inner or left joins, nothing else (yet). */
export function sourcesOf(from: AstNode | null | undefined, ctes: Ctes, sources = new Map<string, Source>()): Map<string, Source> {
  if (!from) throw shapeError('the query reads no dataset');
  if (from.type === 'BASE_TABLE' || from.type === 'SUBQUERY') {
    const name = String(from.alias || from.table_name);
    if (sources.has(name)) throw shapeError(`${name} is used twice`);
    const renamed = (from.column_name_alias ?? []) as string[];
    const cte = from.type === 'BASE_TABLE' ? ctes.get(String(from.table_name)) : undefined;
    if (from.type === 'SUBQUERY') sources.set(name, { kind: 'derived', node: from.subquery.node, scope: ctes, columnAliases: renamed });
    else if (cte) sources.set(name, { kind: 'derived', node: cte.node, scope: cte.scope, columnAliases: renamed.length > 0 ? renamed : cte.aliases });
    else sources.set(name, { kind: 'dataset', dataset: String(from.table_name) });
    return sources;
  }
  if (from.type === 'JOIN' && (from.join_type === 'INNER' || from.join_type === 'LEFT') && from.ref_type === 'REGULAR') {
    sourcesOf(from.left, ctes, sources);
    sourcesOf(from.right, ctes, sources);
    return sources;
  }
  throw shapeError('only tables, CTEs and subqueries joined by INNER or LEFT joins; no other joins (yet)');
}

/** The names of a derived relation's columns, as a query over it sees them. */
function outputNames(source: Extract<Source, { kind: 'derived' }>): string[] {
  let node = source.node;
  while (node.type === 'SET_OPERATION_NODE') node = node.left;
  const names = ((node.select_list ?? []) as AstNode[]).map(itemName);
  source.columnAliases.forEach((alias, index) => {
    if (index < names.length) names[index] = alias;
  });
  return names;
}

export function resolveColumn(expression: AstNode, sources: Map<string, Source>, columnSpecs: Map<string, ColumnSpec[]>, depth = 0): ResolvedColumn | undefined {
  if (expression.class !== 'COLUMN_REF') return undefined;
  const names = expression.column_names as string[];
  const column = String(names.at(-1));
  const candidates: Array<[string, Source | undefined]> = names.length >= 2 ? [[String(names.at(-2)), sources.get(String(names.at(-2)))]] : [...sources];
  const found = candidates.flatMap(([binding, source]): ResolvedColumn[] => {
    if (!source) return [];
    if (source.kind === 'dataset') {
      const spec = columnSpecs.get(source.dataset)?.find((entry) => entry.name === column);
      return spec ? [{ binding, column, dataset: source.dataset, spec, neverNull: !spec.nullable, integral: wholeNumberType.test(spec.type) }] : [];
    }
    const index = outputNames(source).indexOf(column);
    if (index < 0) return [];
    // A count computed in a CTE is never null; anything else a derived relation computes or passes on may be.
    const item = source.node.type === 'SELECT_NODE' ? (source.node.select_list[index] as AstNode | undefined) : undefined;
    const counted = item?.class === 'FUNCTION' && ['count', 'count_star'].includes(String(item.function_name).toLowerCase());
    const behind = registeredBehind(source, index, columnSpecs, depth);
    return [{ binding, column, ...behind, neverNull: counted, integral: counted || Boolean(behind.spec && wholeNumberType.test(behind.spec.type)) }];
  });
  if (found.length > 1) throw shapeError(`${column} is ambiguous; qualify it with its table`);
  return found[0];
}

/**
 * The registered column behind a derived relation's column, when the relation selects it as a plain column.
 * Only what is released depends on it, never what protects it: a public domain lists cells whatever the data holds
 * (rows with other keys are not released), and bounds clamp whatever the values are.
 */
function registeredBehind(source: Extract<Source, { kind: 'derived' }>, index: number, columnSpecs: Map<string, ColumnSpec[]>, depth: number): Pick<ResolvedColumn, 'dataset' | 'spec'> {
  const item = source.node.type === 'SELECT_NODE' ? (source.node.select_list[index] as AstNode | undefined) : undefined;
  if (!item || item.class !== 'COLUMN_REF' || depth > 16) return {};
  try {
    const behind = resolveColumn(item, sourcesOf(source.node.from_table, ctesOf(source.node, source.scope)), columnSpecs, depth + 1);
    return behind?.spec ? { dataset: behind.dataset, spec: behind.spec } : {};
  } catch {
    // A shape the analyser accepted inside a derived relation (a cross join, say): its columns are simply not traced.
    return {};
  }
}

/** The value where the expression is not null, else null. */
const whenPresent = (expression: AstNode, value: AstNode): AstNode => caseWhen(isNotNull(expression), value);
/** 1 where the expression is not null, else 0: a count of some rows as a sum with bounds [0, 1]. */
const presence = (expression: AstNode): AstNode => caseWhen(isNotNull(expression), integer(1), integer(0));

/**
 * The clamp of a summed column: its declared bounds, which an operator may narrow (less noise, more clipping) but
 * never widen, or — for a column the query computes, which has none — the operator's. Bounds are keyed by the
 * column's name in lower case, as DuckDB reads identifiers (`Trips` is `trips`); the keys used are added to `used`.
 */
export function clampOf(argument: ResolvedColumn, requested: DpRequest['bounds'], used: Set<string>, figure: string): { min: number; max: number } {
  const key = argument.column.toLowerCase();
  const given = requested?.[key];
  if (given) used.add(key);
  if (argument.spec) {
    const declared = argument.spec.bounds;
    if (!declared) throw shapeError(`${figure} needs a column with declared bounds`);
    if (given && (given.min < declared.min || given.max > declared.max || given.min > given.max)) {
      throw new AppError('VALIDATION_FAILED', `bounds for ${argument.column} may only narrow the declared [${declared.min}, ${declared.max}]`, [{ path: `privacy.bounds.${key}`, problem: 'widens the declared bounds' }]);
    }
    return given ?? declared;
  }
  // A column computed in a CTE (a per-person total, say): the operator names its bounds before seeing any data,
  // and the clamp to them is what bounds one person's contribution.
  if (!given) throw new AppError('VALIDATION_FAILED', `${argument.column} is computed by the query, so the catalogue declares no bounds for it: give them in privacy.bounds.${key}`, [{ path: `privacy.bounds.${key}`, problem: 'required for a computed column' }]);
  if (given.min > given.max) throw new AppError('VALIDATION_FAILED', `bounds for ${argument.column} have min above max`, [{ path: `privacy.bounds.${key}`, problem: 'min above max' }]);
  return given;
}

/** The relations an outer join can pad with nulls: those on the right of a LEFT JOIN. */
function paddedWithNulls(from: AstNode, padded = false, bindings = new Set<string>()): Set<string> {
  if (from.type === 'JOIN') {
    paddedWithNulls(from.left, padded, bindings);
    paddedWithNulls(from.right, padded || from.join_type === 'LEFT', bindings);
  } else if (padded) {
    bindings.add(String(from.alias || from.table_name));
  }
  return bindings;
}

/** The most cells a DP output lists from public domains (each is drawn noise, found in the data or not). */
const MAX_DP_CELLS = 100_000;

const range = (first: number, last: number) => Array.from({ length: last - first + 1 }, (_, index) => first + index);
/** Calendar fields whose values the calendar fixes, by DuckDB's function or date_part name (names in DuckDB's English). */
const calendarFields: Record<string, Array<number | string>> = {
  dayname: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'],
  monthname: ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'],
  hour: range(0, 23),
  minute: range(0, 59),
  second: range(0, 59),
  month: range(1, 12),
  quarter: range(1, 4),
  day: range(1, 31),
  dayofmonth: range(1, 31),
  dayofweek: range(0, 6),
  dow: range(0, 6),
  isodow: range(1, 7),
  week: range(1, 53),
  weekofyear: range(1, 53),
  dayofyear: range(1, 366),
  doy: range(1, 366),
};

/**
 * The values a group key can take, where the SQL alone fixes them: a calendar field (`hour(boarded_at)`,
 * `date_part('dow', boarded_at)`) or a CASE whose results are constants — all text or all whole numbers, NULL
 * among them where a branch (or the missing ELSE) gives it — in the order written. Such a domain is public: it
 * depends on no row, so every cell of it is output, found in the data or not, and no partition selection (nor δ)
 * is needed. Rows whose key falls outside it are not released (a NULL date's hour, say), as with a catalogue domain.
 * Null where the values depend on the data.
 */
export function domainOfExpression(expression: AstNode): Array<string | number | null> | null {
  if (expression.class === 'FUNCTION' && expression.children?.length === 1) {
    return calendarFields[String(expression.function_name).toLowerCase()] ?? null;
  }
  if (expression.class === 'FUNCTION' && ['date_part', 'datepart'].includes(String(expression.function_name).toLowerCase())) {
    const [part] = expression.children as AstNode[];
    return part?.class === 'CONSTANT' && part.value?.type?.id === 'VARCHAR' ? (calendarFields[String(part.value.value).toLowerCase()] ?? null) : null;
  }
  if (expression.class !== 'CASE') return null;
  const results = [...(expression.case_checks as Array<{ then_expr: AstNode }>).map((check) => check.then_expr), expression.else_expr as AstNode | null];
  const values: Array<string | number | null> = [];
  for (const result of results) {
    if (!result || (result.class === 'CONSTANT' && result.value?.is_null)) values.push(null);
    else if (result.class === 'CONSTANT' && result.value?.type?.id === 'VARCHAR') values.push(String(result.value.value));
    else if (result.class === 'CONSTANT' && ['INTEGER', 'BIGINT'].includes(result.value?.type?.id) && Number.isSafeInteger(Number(result.value.value))) values.push(Number(result.value.value));
    else return null;
  }
  const kinds = new Set(values.filter((value) => value !== null).map((value) => typeof value));
  return kinds.size === 1 ? [...new Set(values)] : null;
}

export async function buildDpPlan(
  analysis: QueryAnalysis,
  catalogue: Map<string, CatalogueDataset>,
  columnSpecs: Map<string, ColumnSpec[]>,
  parser: SqlParser,
  options: { maxRowsPerUnit: number; openDomain?: OpenDomainReader } & DpRequest,
): Promise<DpPlan> {
  const node = analysis.node;
  if (analysis.kind !== 'aggregate') throw shapeError('the query must aggregate');
  if (node.type !== 'SELECT_NODE') throw shapeError('the outermost query must be one SELECT (a set operation may be a CTE)');
  const sources = sourcesOf(node.from_table, ctesOf(node, new Map()));
  // The analyser carries every protected dataset's privacy unit up through CTEs and subqueries (an inner
  // aggregation must group by it), so each relation of this FROM clause names the units its rows belong to.
  const units = analysis.units;
  if (units.length === 0) throw shapeError('at least one dataset must be protected (open data needs no noise)');
  const resolve = (expression: AstNode) => resolveColumn(expression, sources, columnSpecs);
  const padded = paddedWithNulls(node.from_table);
  const alwaysPresent = (column: ResolvedColumn | undefined) => Boolean(column?.neverNull && !padded.has(column.binding));
  if (units.length > 1) {
    if (units.some((unit) => sources.get(unit.binding)?.kind !== 'dataset')) {
      throw shapeError('a CTE or subquery over protected data may read one protected dataset and be the only protected relation of the query; join protected datasets on their privacy units in the outermost query, as tables');
    }
    requireJoinsOnUnits(node.from_table, units.map((unit) => unit.binding), resolve, (binding) => catalogue.get(units.find((unit) => unit.binding === binding)!.dataset)!.privacyUnit);
  }
  const [unit] = units;
  const datasetId = unit!.dataset;

  const groups = (analysis.groupExpressions as AstNode[]).map((expression, index) => {
    const column = resolve(expression);
    const shown = (node.select_list as AstNode[]).find((item) => sameExpression(item, expression));
    return { expression, column, name: column?.spec?.name ?? column?.column ?? String(shown?.alias || `group_${index + 1}`) };
  });
  // A key's public domain: the catalogue's; for a column of open data, the values its pinned snapshot holds (open
  // data is public); for a key computed from columns, the values the query alone fixes (a calendar field, a CASE of
  // constant labels). Without one (a month of a date, a band of a value) its cells are chosen by partition selection.
  const openDomain = async (column: ResolvedColumn | undefined) => {
    const dataset = column?.dataset ? catalogue.get(column.dataset) : undefined;
    return dataset?.openData && dataset.grade === 'L1' && column?.spec && options.openDomain ? options.openDomain(dataset.id, column.spec.name) : null;
  };
  const groupColumns: DpPlan['groupColumns'] = [];
  const fromOpenData = new Set<number>();
  for (const group of groups) {
    const registered = group.column?.spec?.publicDomain ?? null;
    const open = registered ? null : await openDomain(group.column);
    if (open) fromOpenData.add(groupColumns.length);
    groupColumns.push({ name: group.name, outputIndex: null, domain: registered ?? open ?? domainOfExpression(group.expression) });
  }
  // Grouping sets (ROLLUP, CUBE): each a table of its own, of the group columns it names; the finest first and the
  // grand total last, as a reader expects them (an ORDER BY sorts them otherwise).
  const querySets = node.group_sets as number[][];
  const groupSets = querySets.length > 1 ? querySets.map((set) => [...set].sort((a, b) => a - b)).sort((a, b) => b.length - a.length) : undefined;
  const cellsListed = () => (groupSets ?? [groupColumns.map((_, index) => index)]).reduce((total, set) => total + set.reduce((product, index) => product * (groupColumns[index]!.domain?.length ?? 1), 1), 0);
  // Too many cells to list: open data's values are then left to partition selection, as before they were read.
  if (groupColumns.every((group) => group.domain) && cellsListed() > MAX_DP_CELLS) {
    for (const index of fromOpenData) groupColumns[index]!.domain = null;
  }
  const partitionSelection = groupColumns.some((group) => group.domain === null);
  if (partitionSelection && options.deltaPico === 0) {
    throw shapeError(`group key ${groupColumns.find((group) => group.domain === null)!.name} has no public domain: partition selection needs a δ > 0`);
  }

  const sums: DpPlan['sums'] = [];
  const sumExpressions: AstNode[] = [];
  const aggregates: DpAggregate[] = [];
  const outputColumns: DpPlan['outputColumns'] = [];
  const usedBounds = new Set<string>();
  const quantiles: NonNullable<DpPlan['quantiles']> = [];
  const histogramValues: AstNode[] = [];
  // An aggregate's argument as a column or, for an expression of a row's columns (`sum(fare - 2) AS surcharge`),
  // named by the output it serves: the operator gives its bounds under that name, as for a column a CTE computes.
  // (The analyser has refused subqueries, whose values would depend on other people's rows.)
  const namedArgument = (item: AstNode): ResolvedColumn | undefined => resolve(item.children[0]) ?? (item.alias ? { binding: '', column: String(item.alias) } : undefined);
  const addSum = (expression: AstNode, entry: DpPlan['sums'][number]): number => {
    const existing = sumExpressions.findIndex((known, index) => sameExpression(known, expression) && sums[index]!.statistic === entry.statistic);
    if (existing >= 0) return existing;
    sums.push(withResolution(entry));
    return sumExpressions.push(expression) - 1;
  };
  const groupOf = (expression: AstNode) => {
    const resolved = resolve(expression);
    return groups.findIndex((group) => sameExpression(group.expression, expression) || Boolean(resolved && group.column && group.column.binding === resolved.binding && group.column.column === resolved.column));
  };
  const groupingOutputs: NonNullable<DpPlan['groupingOutputs']> = [];
  (node.select_list as AstNode[]).map(orderedSetQuantile).forEach((item, outputIndex) => {
    const resolved = resolve(item);
    const name = String(item.alias || resolved?.column || `${String(item.function_name ?? 'column')}_${outputIndex + 1}`);
    const groupIndex = groupOf(item);
    if (groupIndex >= 0) {
      groupColumns[groupIndex]!.outputIndex = outputIndex;
      outputColumns.push({ name, role: 'group_key' });
      return;
    }
    // Named in refusals by its place and alias: an unaliased expression's made-up name (`+_2`) would say nothing.
    const described = `output ${outputIndex + 1}${item.alias ? ` (${String(item.alias)})` : ''}`;
    // grouping(a, b) labels a row by the keys its set rolls up: the query's structure, set after the noise.
    if (item.type === 'GROUPING_FUNCTION') {
      // Its arguments name keys as GROUP BY does: by expression, column or output alias (`grouping(hour)`).
      const aliased = (argument: AstNode) => {
        const names = argument.class === 'COLUMN_REF' ? (argument.column_names as string[]) : [];
        const item = names.length === 1 ? (node.select_list as AstNode[]).find((candidate) => String(candidate.alias).toLowerCase() === names[0]!.toLowerCase()) : undefined;
        return item ? groupOf(item) : -1;
      };
      const keys = (item.children as AstNode[]).map((argument) => (groupOf(argument) >= 0 ? groupOf(argument) : aliased(argument)));
      if (keys.some((key) => key < 0)) throw shapeError(`${described}: grouping() takes the query's group keys`);
      groupingOutputs.push({ outputIndex, keys });
      outputColumns.push({ name, role: 'group_key' });
      return;
    }
    if (item.class !== 'FUNCTION') throw shapeError(`${described} ${notAFigure}`);
    const functionName = String(item.function_name).toLowerCase();
    // FILTER (WHERE c) keeps a row by its own values alone, as WHERE does: the figure is of CASE WHEN c THEN x END,
    // and its statistic is named after the output it serves.
    const filter = (item.filter ?? null) as AstNode | null;
    const filtered = (value: AstNode): AstNode => (filter ? caseWhen(filter, value) : value);
    if (item.distinct) {
      if (filter) throw shapeError(`${described}: count(DISTINCT …) takes no FILTER`);
      // The units in a cell: after the cap, one unit is in at most L cells and adds 1 to each, whatever its rows.
      const counted = functionName === 'count' && item.children.length === 1 ? resolve(item.children[0]) : undefined;
      const unitColumn = catalogue.get(datasetId)!.privacyUnit;
      if (!counted || counted.binding !== unit!.binding || counted.dataset !== datasetId || counted.spec?.name !== unitColumn) {
        throw shapeError(`${described}: the only DISTINCT aggregate is count(DISTINCT ${unitColumn}), the privacy unit`);
      }
      aggregates.push({ outputIndex, kind: 'units', column: unitColumn });
      outputColumns.push({ name, role: 'dp_count' });
      return;
    }
    if (functionName === 'count_star' || functionName === 'count') {
      // count(1) counts rows; count(NULL) counts none, as count(x) of a null x does.
      const argument = functionName === 'count' && item.children.length === 1 && (item.children[0].class !== 'CONSTANT' || item.children[0].value?.is_null) ? (item.children[0] as AstNode) : undefined;
      const counted = argument ? resolve(argument) : undefined;
      if (!filter && (!argument || alwaysPresent(counted))) {
        aggregates.push({ outputIndex, kind: 'count' });
      } else {
        // count(x) counts the rows where x is not null (and the FILTER holds): a sum of 1s and 0s, with its own noise.
        const label = filter ? `count for ${name}` : `count(${counted?.column ?? name})`;
        const sumIndex = addSum(presence(filtered(argument ?? integer(1))), { column: counted?.column ?? name, bounds: { min: 0, max: 1 }, statistic: label, integral: true });
        aggregates.push({ outputIndex, kind: 'sum', sumIndex, column: counted?.column ?? name, bounds: { min: 0, max: 1 } });
      }
      outputColumns.push({ name, role: 'dp_count' });
      return;
    }
    if ((functionName === 'sum' || functionName === 'avg' || functionName === 'mean') && item.children.length === 1) {
      const argument = namedArgument(item);
      if (!argument) throw shapeError(`${described} sums an expression: name it (${functionName}(…) AS name) and give its bounds in privacy.bounds.<name>`);
      const bounds = clampOf(argument, options.bounds, usedBounds, `${functionName}(${argument.column})`);
      const sumIndex = addSum(filtered(item.children[0]), { column: argument.column, bounds, ...(filter ? { statistic: `sum(${argument.column}) for ${name}` } : {}), ...(argument.integral ? { integral: true } : {}) });
      const kind = functionName === 'sum' ? 'sum' : 'avg';
      // AVG divides by the rows where the value is present: where it may be null, those are counted as a figure of
      // their own (all rows would understate the mean).
      const presentIndex =
        kind === 'avg' && (filter || !alwaysPresent(argument))
          ? addSum(presence(filtered(item.children[0])), { column: argument.column, bounds: { min: 0, max: 1 }, statistic: filter ? `count for ${name}` : `count(${argument.column})`, integral: true })
          : undefined;
      aggregates.push({ outputIndex, kind, sumIndex, ...(presentIndex === undefined ? {} : { presentIndex }), column: argument.column, bounds });
      outputColumns.push({ name, role: kind === 'sum' ? 'dp_sum' : 'dp_mean' });
      return;
    }
    // A variance (or standard deviation, of the sample or the population) is post-processing of three noisy
    // figures: Σx, Σx² and the rows counted, each of the clamped value — the square is of the clamped value, so one
    // row adds at most the larger bound squared (Tumult Analytics and OpenDP release variances the same way).
    if (varianceFunctions.has(functionName) && item.children.length === 1) {
      const argument = namedArgument(item);
      if (!argument) throw shapeError(`${described} is a spread of an expression: name it (${functionName}(…) AS name) and give its bounds in privacy.bounds.<name>`);
      const bounds = clampOf(argument, options.bounds, usedBounds, `${functionName}(${argument.column})`);
      const value = filtered(item.children[0]);
      const integral = argument.integral ? { integral: true } : {};
      const sumIndex = addSum(value, { column: argument.column, bounds, ...(filter ? { statistic: `sum(${argument.column}) for ${name}` } : {}), ...integral });
      const squareIndex = addSum(operator('*', [clamped(value, bounds), clamped(value, bounds)]), {
        column: argument.column,
        bounds: squaredBounds(bounds),
        statistic: `sum(${argument.column}²)${filter ? ` for ${name}` : ''}`,
        ...integral,
      });
      const presentIndex =
        filter || !alwaysPresent(argument)
          ? addSum(presence(value), { column: argument.column, bounds: { min: 0, max: 1 }, statistic: filter ? `count for ${name}` : `count(${argument.column})`, integral: true })
          : undefined;
      aggregates.push({ outputIndex, kind: 'variance', sumIndex, squareIndex, ...(presentIndex === undefined ? {} : { presentIndex }), column: argument.column, bounds, root: functionName.startsWith('stddev'), ...(functionName.endsWith('_pop') ? { population: true } : {}) });
      outputColumns.push({ name, role: 'dp_spread' });
      return;
    }
    if (dpQuantileFunctions.has(functionName)) {
      const q = functionName === 'median' ? 0.5 : quantileLevel(item.children[1] as AstNode | undefined);
      if (q === undefined || item.children.length !== (functionName === 'median' ? 1 : 2)) throw shapeError(`${described}: a quantile takes a column and one constant level between 0 and 1 (quantile_cont(fare, 0.9))`);
      const argument = namedArgument(item);
      if (!argument) throw shapeError(`${described} is a quantile of an expression: name it (… AS name) and give its bounds in privacy.bounds.<name>`);
      const statistic = `${functionName === 'median' ? 'median' : `quantile ${q}`} of ${argument.column}`;
      const bounds = clampOf(argument, options.bounds, usedBounds, statistic);
      quantiles.push({ outputIndex, column: argument.column, statistic, q, bounds, firstFigure: -1, bins: QUANTILE_BINS });
      histogramValues.push(clamped(filtered(item.children[0]), bounds));
      outputColumns.push({ name, role: 'dp_quantile' });
      return;
    }
    // A correlation, covariance or regression line is post-processing of six noisy figures over the rows where both
    // values are present: their count, Σx, Σy, Σxy, Σx² and Σy², each of the clamped values (x·y of the clamped x
    // and y, so one row adds at most the largest product of the bounds).
    if (pairedAggregates.has(functionName as AggregateName) && item.children.length === 2) {
      const given = (item.children as AstNode[]).map((child) => ({ node: child, column: resolve(child) }));
      if (given.some((argument) => !argument.column)) throw shapeError(`${described}: ${functionName} takes two columns; compute an expression in a CTE and give its bounds in privacy.bounds.<name>`);
      // The pair's figures are the same whichever way round it is asked for, so corr(a, b) and regr_slope(b, a)
      // share them (and their share of ε): they are built for the pair in the order of the columns' names.
      const [p, q] = [...given].sort((left, right) => (left.column!.column < right.column!.column ? -1 : left.column!.column > right.column!.column ? 1 : 0)) as [typeof given[0], typeof given[0]];
      const [pBounds, qBounds] = [p, q].map((argument) => clampOf(argument.column!, options.bounds, usedBounds, `${functionName}(${given.map((entry) => entry.column!.column).join(', ')})`)) as [{ min: number; max: number }, { min: number; max: number }];
      // DuckDB skips a row where either value is missing (or the FILTER fails): every figure is of those rows only.
      const both = (value: AstNode) => filtered(caseWhen(allOf([isNotNull(p.node), isNotNull(q.node)]), value));
      const [cp, cq] = [clamped(p.node, pBounds), clamped(q.node, qBounds)];
      const [pc, qc] = [p.column!, q.column!];
      const label = `${pc.column}, ${qc.column}${filter ? ` for ${name}` : ''}`;
      const whole = (...columns: ResolvedColumn[]) => (columns.every((column) => column.integral) ? { integral: true } : {});
      const figures = {
        count: addSum(presence(both(p.node)), { column: pc.column, bounds: { min: 0, max: 1 }, statistic: `count(${label})`, integral: true }),
        p: addSum(both(p.node), { column: pc.column, bounds: pBounds, statistic: `sum(${pc.column}) (${label})`, ...whole(pc) }),
        q: addSum(both(q.node), { column: qc.column, bounds: qBounds, statistic: `sum(${qc.column}) (${label})`, ...whole(qc) }),
        pq: addSum(both(operator('*', [cp, cq])), { column: pc.column, bounds: productBounds(pBounds, qBounds), statistic: `sum(${pc.column}·${qc.column}) (${label})`, ...whole(pc, qc) }),
        pp: addSum(both(operator('*', [cp, structuredClone(cp)])), { column: pc.column, bounds: squaredBounds(pBounds), statistic: `sum(${pc.column}²) (${label})`, ...whole(pc) }),
        qq: addSum(both(operator('*', [cq, structuredClone(cq)])), { column: qc.column, bounds: squaredBounds(qBounds), statistic: `sum(${qc.column}²) (${label})`, ...whole(qc) }),
      };
      const firstIsP = given[0] === p;
      const paired = firstIsP
        ? { count: figures.count, x: figures.p, y: figures.q, xy: figures.pq, xx: figures.pp, yy: figures.qq, xBounds: pBounds, yBounds: qBounds }
        : { count: figures.count, x: figures.q, y: figures.p, xy: figures.pq, xx: figures.qq, yy: figures.pp, xBounds: qBounds, yBounds: pBounds };
      aggregates.push({ outputIndex, kind: 'paired', pairedFunction: functionName, paired, column: given[0]!.column!.column });
      outputColumns.push({ name, role: 'dp_spread' });
      return;
    }
    throw shapeError(`${described} ${notAFigure}`);
  });
  // Each quantile's histogram: one figure per bin, 1 where the row's clamped value falls in it, after the sums.
  const histogramFigures = quantiles.flatMap((quantile, index) => {
    quantile.firstFigure = sums.length + index * QUANTILE_BINS;
    return histogramBins(histogramValues[index]!, quantile.bounds, QUANTILE_BINS);
  });
  if (aggregates.length === 0 && quantiles.length === 0) throw shapeError('no aggregate');
  const { order, limit } = outputOrderOf(node, shapeError);
  const having = node.having ? outputConditionOf(node.having, node.select_list as AstNode[], shapeError) : undefined;
  for (const column of Object.keys(options.bounds ?? {})) {
    if (!usedBounds.has(column)) throw new AppError('VALIDATION_FAILED', `bounds were given for ${column}, which the query does not sum`, [{ path: `privacy.bounds.${column}`, problem: 'not summed' }]);
  }
  if (!partitionSelection && cellsListed() > MAX_DP_CELLS) throw shapeError('the product of the group domains exceeds 100,000 cells');

  const countsUnits = partitionSelection || aggregates.some((aggregate) => aggregate.kind === 'units');
  // Totals can be made to add up when every cell of every set is listed and a row's key is matched to its domain
  // value as text (strings and whole numbers; a fraction's text depends on its type).
  const consistentTotals =
    groupSets !== undefined &&
    !partitionSelection &&
    groupColumns.every((group) => group.domain!.every((value) => value === null || typeof value === 'string' || Number.isInteger(value))) &&
    groupColumns.reduce((product, group) => product * group.domain!.length, 1) <= MAX_CONSISTENT_CELLS;
  const sql = await boundedFiguresSql(node, parser, {
    unit: unit!.expression,
    groups: groups.map((group) => group.expression),
    figures: [...sumExpressions.map((expression, index) => ({ expression, bounds: sums[index]!.bounds })), ...histogramFigures],
    countsUnits,
    maxRowsPerUnit: options.maxRowsPerUnit,
    ...(groupSets ? { groupSets } : {}),
    ...(consistentTotals ? { inDomain: groupColumns.map((group) => group.domain!) } : {}),
  });
  return {
    kind: 'dp_aggregate',
    dataset: datasetId,
    budgetDatasets: [...new Set(units.map((entry) => entry.dataset))],
    groupColumns,
    ...(groupSets ? { groupSets } : {}),
    ...(consistentTotals ? { consistentTotals: true as const } : {}),
    ...(groupingOutputs.length > 0 ? { groupingOutputs } : {}),
    aggregates,
    sums,
    ...(quantiles.length > 0 ? { quantiles } : {}),
    outputColumns,
    maxRowsPerUnit: options.maxRowsPerUnit,
    partitionSelection,
    ...(having ? { having } : {}),
    ...(order ? { order } : {}),
    ...(limit ? { limit } : {}),
    ...(analysis.derived ? { derived: analysis.derived } : {}),
    mechanism: options.mechanism,
    sql,
    epsilonMicro: options.epsilonMicro,
    deltaPico: options.deltaPico,
  };
}

/**
 * A figure with the power of two it is counted in steps of, where it needs one. The noise is integer-valued, so a
 * figure is rounded first, and rounding can move two neighbours' figures one step further apart in each of a unit's
 * cells. Counted in whole units, that step is as large as a row's whole contribution to a 0/1 figure, and four times
 * a p(1−p) ≤ ¼'s. In steps fine enough that a row's largest value is at least 1,024 of them, it adds under 0.1 %.
 * Whole numbers with whole-number bounds need no rounding and stay in whole units.
 */
export function withResolution(entry: DpPlan['sums'][number]): DpPlan['sums'][number] {
  const largest = magnitude(entry.bounds);
  const scale = !wholeFigure(entry) && largest > 0 && largest < 1024 ? 2 ** Math.ceil(Math.log2(1024 / largest)) : 1;
  return scale > 1 ? { ...entry, scale } : entry;
}

/** B = max(|min|, |max|): the most one row's clamped value can add to, or take from, a sum. */
export const magnitude = (bounds: { min: number; max: number }): number => Math.max(Math.abs(bounds.min), Math.abs(bounds.max));

/** Whole numbers with whole-number bounds: their sum needs no rounding before the integer-valued noise. */
export const wholeFigure = (entry: Pick<DpPlan['sums'][number], 'integral' | 'bounds'>): boolean =>
  Boolean(entry.integral) && Number.isInteger(entry.bounds.min) && Number.isInteger(entry.bounds.max);

/**
 * Bins of a quantile's histogram: equal widths over its bounds, enough that the quantile is placed within 1/32 of
 * their width, and few enough that the noise of the bins a quantile is counted up through stays small (the noise
 * of k bins adds up to √k times one bin's).
 */
const QUANTILE_BINS = 32;

/** What an output that is none of the figures a DP job releases is told. */
const notAFigure = 'is not COUNT, SUM, AVG, a standard deviation or variance, a correlation, covariance or regression line, or a quantile of a column';

/** Variances and standard deviations (sample and population), released from a noisy Σx, Σx² and count. */
const varianceFunctions = new Set(['stddev', 'stddev_samp', 'variance', 'var_samp', 'stddev_pop', 'var_pop']);

/** The bounds of a product of two clamped values: the smallest and largest products of their bounds. */
export function productBounds(x: { min: number; max: number }, y: { min: number; max: number }): { min: number; max: number } {
  const corners = [x.min * y.min, x.min * y.max, x.max * y.min, x.max * y.max];
  return { min: Math.min(...corners), max: Math.max(...corners) };
}

/** The bounds of a clamped value's square: from 0 when the bounds straddle 0, else from the smaller square. */
export function squaredBounds(bounds: { min: number; max: number }): { min: number; max: number } {
  const [low, high] = [bounds.min ** 2, bounds.max ** 2].sort((a, b) => a - b) as [number, number];
  return { min: bounds.min <= 0 && bounds.max >= 0 ? 0 : low, max: high };
}

/**
 * A quantile written as an ordered-set aggregate (`percentile_cont(0.9) WITHIN GROUP (ORDER BY fare)`, which DuckDB
 * parses as quantile_cont with the level as its only argument) in the form `quantile_cont(fare, 0.9)`; ordered
 * DESC, its level counts from the top (0.9 → 0.1). Anything else as it is.
 */
function orderedSetQuantile(item: AstNode): AstNode {
  const orders = (item.order_bys?.orders ?? []) as AstNode[];
  if (item.class !== 'FUNCTION' || !dpQuantileFunctions.has(String(item.function_name).toLowerCase()) || orders.length !== 1 || item.children?.length !== 1) return item;
  const q = quantileLevel(item.children[0]);
  if (q === undefined) return item;
  const level = orders[0]!.type === 'DESCENDING' ? doubleConstant(Number((1 - q).toFixed(12))) : item.children[0];
  return { ...item, children: [orders[0]!.expression, level], order_bys: { type: 'ORDER_MODIFIER', orders: [] } };
}

/** A quantile's level: a constant strictly between 0 and 1, or undefined. */
function quantileLevel(node: AstNode | undefined): number | undefined {
  const value = numericConstant(node);
  return value !== undefined && value > 0 && value < 1 ? value : undefined;
}

/**
 * One figure per bin of [min, max]: 1 where the clamped value falls in bin k (the last bin holds max), 0 elsewhere
 * and where it is null. A row is in one bin, so the histogram is a count vector: a unit's L rows move it by L.
 */
function histogramBins(value: AstNode, bounds: { min: number; max: number }, bins: number): Array<{ expression: AstNode; bounds: { min: number; max: number } }> {
  const perUnit = bounds.max > bounds.min ? bins / (bounds.max - bounds.min) : 0;
  const bin = call('least', [integer(bins - 1), call('floor', [operator('*', [operator('-', [value, doubleConstant(bounds.min)]), doubleConstant(perUnit)])])]);
  return Array.from({ length: bins }, (_, k) => ({
    expression: caseWhen(comparison('COMPARE_EQUAL', structuredClone(bin), integer(k)), integer(1), integer(0)),
    bounds: { min: 0, max: 1 },
  }));
}

/** An expression clamped to its bounds (a null stays null: DuckDB's least and greatest skip nulls). */
export const clamped = (expression: AstNode, bounds: { min: number; max: number }): AstNode =>
  whenPresent(expression, call('greatest', [call('least', [structuredClone(expression), doubleConstant(bounds.max)]), doubleConstant(bounds.min)]));

/**
 * The exact figures a DP release adds noise to, computed inside DuckDB: the operator's FROM and WHERE (its select
 * list replaced by the privacy unit, the group keys and the clamped value of each figure), each unit bounded to
 * `maxRowsPerUnit` rows (and cells, where units are counted), then per cell the row count `__pds_n`, the distinct
 * units `__pds_units` and the sums `__pds_s_<i>`, keyed by `__pds_g_<i>`.
 */
export async function boundedFiguresSql(
  node: AstNode,
  parser: SqlParser,
  input: {
    unit: AstNode;
    groups: AstNode[];
    figures: Array<{ expression: AstNode; bounds: { min: number; max: number } }>;
    countsUnits: boolean;
    maxRowsPerUnit: number;
    groupSets?: number[][];
    /** Each group key's public domain: rows whose key is outside it are left out before any bounding. */
    inDomain?: Array<Array<string | number | null>>;
  },
): Promise<string> {
  const inner = structuredClone(node);
  inner.select_list = [
    { ...structuredClone(input.unit), alias: '__pds_u' },
    ...input.groups.map((expression, index) => ({ ...structuredClone(expression), alias: `__pds_g_${index}` })),
    ...input.figures.map(({ expression, bounds }, index) => ({ ...clamped(expression, bounds), alias: `__pds_x_${index}` })),
  ];
  inner.group_expressions = [];
  inner.group_sets = [];
  inner.having = null;
  inner.modifiers = [];
  const keys = input.groups.map((_, index) => `__pds_g_${index}`);
  const L = input.maxRowsPerUnit;
  const kept = `FILTER (WHERE __pds_rank <= ${L})`;
  const select = [
    ...keys,
    // Which set a row of grouping sets belongs to (execution-plan.ts, `groupingOf`).
    ...(input.groupSets ? [`grouping(${keys.join(', ')}) AS ${LEVEL_COLUMN}`] : []),
    `count(*) ${kept} AS __pds_n`,
    ...(input.countsUnits ? ['count(DISTINCT __pds_u) AS __pds_units'] : []),
    ...input.figures.map((_, index) => `sum(__pds_x_${index}) ${kept} AS __pds_s_${index}`),
  ].join(', ');
  // Rows without a unit (open rows an outer join kept unmatched) are dropped: their presence would depend on the
  // absence of a protected row.
  // Rows whose keys are outside their public domains are in no listed cell; where totals must add up to the cells
  // listed they are left out (matched as text: the domain's strings and whole numbers are written as DuckDB casts).
  const inDomain = (input.inDomain ?? []).map((domain, index) => {
    const listed = domain.filter((value) => value !== null).map((value) => sqlString(String(value)));
    const tests = [...(listed.length > 0 ? [`CAST(__pds_g_${index} AS VARCHAR) IN (${listed.join(', ')})`] : []), ...(domain.includes(null) ? [`__pds_g_${index} IS NULL`] : [])];
    return ` AND (${tests.length > 0 ? tests.join(' OR ') : 'false'})`;
  });
  let rows = `SELECT * FROM (${await parser.toSql(inner)}) AS __pds_rows WHERE __pds_u IS NOT NULL${inDomain.join('')}`;
  if (input.countsUnits) {
    // Where units are counted, each unit is first bounded to L cells, taken in an order of its own (a hash of the
    // unit and the keys, the keys breaking ties): a card with many trips on a few routes is then counted on each
    // of them, not only on the routes its L random trips fell on, and no cell is the one every unit drops. Its rows
    // are capped within those cells, so every cell a unit's rows reach is one where it counts as a unit — the cells
    // one unit holds alone are at most L, which is what partition selection's δ is spent on.
    const tieBreak = keys.map((key) => `, ${key}`).join('');
    rows = `SELECT * FROM (SELECT *, dense_rank() OVER (PARTITION BY __pds_u ORDER BY hash(__pds_u${tieBreak})${tieBreak}) AS __pds_cell_rank FROM (${rows}) AS __pds_units_rows) AS __pds_cells WHERE __pds_cell_rank <= ${L}`;
  }
  // Counts of units read every row of the unit's cells; counts and sums of rows only the L kept ones.
  const where = input.countsUnits ? '' : ` WHERE __pds_rank <= ${L}`;
  return (
    `SELECT ${select} FROM (SELECT *, row_number() OVER (PARTITION BY __pds_u ORDER BY random()) AS __pds_rank FROM (${rows}) AS __pds_capped) AS __pds_bounded` +
    `${where}${
      input.groupSets
        ? ` GROUP BY GROUPING SETS (${input.groupSets.map((set) => `(${set.map((index) => keys[index]).join(', ')})`).join(', ')})`
        : keys.length > 0
          ? ` GROUP BY ${keys.join(', ')}`
          : ''
    }`
  );
}

/**
 * Protected tables must be linked to each other by equalities of their privacy units in ON clauses (directly or
 * through one another): then a joined row carries the same unit value from each, and bounding that one value
 * bounds every protected dataset's contribution.
 */
function requireJoinsOnUnits(
  from: AstNode,
  protectedBindings: string[],
  resolve: (expression: AstNode) => ResolvedColumn | undefined,
  unitOf: (binding: string) => string,
): void {
  const parent = new Map(protectedBindings.map((binding) => [binding, binding]));
  const root = (binding: string): string => (parent.get(binding) === binding ? binding : root(parent.get(binding)!));
  const conjuncts = (expression: AstNode | null | undefined): AstNode[] =>
    !expression ? [] : expression.type === 'CONJUNCTION_AND' ? (expression.children as AstNode[]).flatMap(conjuncts) : [expression];
  const visit = (node: AstNode) => {
    if (node.type !== 'JOIN') return;
    visit(node.left);
    visit(node.right);
    for (const condition of conjuncts(node.condition)) {
      if (condition.type !== 'COMPARE_EQUAL') continue;
      const left = resolve(condition.left);
      const right = resolve(condition.right);
      if (!left || !right || !parent.has(left.binding) || !parent.has(right.binding)) continue;
      if (left.spec?.name === unitOf(left.binding) && right.spec?.name === unitOf(right.binding)) parent.set(root(left.binding), root(right.binding));
    }
  };
  visit(from);
  const unlinked = protectedBindings.filter((binding) => root(binding) !== root(protectedBindings[0]!));
  if (unlinked.length > 0) {
    throw shapeError(`protected datasets are joined only on their privacy units (ON a.unit = b.unit); ${unlinked.join(', ')} is not (one row cap cannot bound two different units)`);
  }
}
