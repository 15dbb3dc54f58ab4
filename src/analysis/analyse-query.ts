import type { ColumnClass } from '../catalog/columns.js';
import { strictestGrade, type Grade } from '../catalog/grades.js';
import { pairedAggregates, type AggregateName, type DisclosurePolicy } from '../policy/disclosure-policy.js';
import type { AstNode } from './sql-parser.js';
import { allOf, caseWhen, columnRef, comparison, defaultItemName, integer, isNotNull, nullValue, operator, sameExpression, toDouble, visitNodes, wholeNumberTypes } from './ast-builders.js';
import { outputConditionOf, outputIndexOf, outputOrderOf, type OutputOrder } from './output-order.js';
import { takeDerivedColumns, withDerivedNames, type DerivedColumns } from './derived-columns.js';

/**
 * Static analysis of one job's SELECT against the catalogue and the release policy, on DuckDB's own AST.
 *
 * Every column reference is resolved to (dataset, column) through aliases, CTEs, subqueries, joins and set
 * operations, and checked against its column class. Derived relations are edited to carry each non-open
 * dataset's privacy unit up to the outermost aggregation (hidden `__pds_unit_*` columns), so that the
 * disclosure queries can count distinct contributors and per-contributor totals per output cell.
 *
 * A refusal is a value with a stable code, a reason and the position in the SQL text; it never contains data.
 */

export type RejectionCode =
  | 'PARSE_ERROR'
  | 'NOT_SELECT'
  | 'MULTIPLE_STATEMENTS'
  | 'TABLE_FUNCTION'
  | 'UNKNOWN_TABLE'
  | 'DATASET_NOT_REQUESTED'
  | 'UNKNOWN_COLUMN'
  | 'AMBIGUOUS_COLUMN'
  | 'STAR_ON_PROTECTED_DATA'
  | 'FUNCTION_NOT_ALLOWED'
  | 'AGGREGATE_NOT_ALLOWED'
  | 'DIRECT_IDENTIFIER_USE'
  | 'SENSITIVE_GROUP_KEY'
  | 'ROW_LEVEL_OUTPUT'
  | 'WINDOW_FUNCTION'
  | 'SUBQUERY_EXPRESSION'
  | 'AGGREGATE_CONDITION'
  | 'SENSITIVE_ORDER'
  | 'SENSITIVE_CONDITION_IN_AGGREGATE'
  | 'UNSUPPORTED_QUERY_SHAPE'
  | 'RESERVED_NAME'
  | 'PARAMETER_NOT_ALLOWED';

export class QueryRejected extends Error {
  constructor(
    readonly code: RejectionCode,
    readonly reason: string,
    readonly position?: number,
  ) {
    super(reason);
  }
}

export type CatalogueDataset = {
  id: string;
  grade: Grade;
  openData: boolean;
  privacyUnit: string;
  uniqueKey?: string[] | null;
  /** `type` is the column's DuckDB type where the caller knows it (a BOOLEAN column sums as a count of some rows). */
  columns: Array<{ name: string; class: ColumnClass; type?: string }>;
};

export type SourceColumn = { dataset: string; column: string; class: ColumnClass };

/**
 * A figure of the outermost aggregation that the contributor and concentration rules weigh — a SUM-like measure,
 * or a count of only some rows — with its argument and the unit whose contributions it adds up. `selective` when
 * the argument adds up only some of the cell's rows (a condition, a case, a FILTER, a step function, a boolean):
 * then the rows it leaves out must be of no contributor or of at least the threshold, since the cell's plain total
 * minus this figure is about them alone, and its contributors are sketched as a set of their own.
 */
export type Measure = { outputIndex: number; aggregate: AggregateName; argument: AstNode; unit: UnitReference; selective: boolean };
export type UnitReference = {
  dataset: string;
  binding: string;
  expression: AstNode;
  /**
   * Proven at most one row per contributor per output cell: the FROM is this dataset alone and the group keys
   * include the rest of its registered unique key. Then rows are contributors, and the sandbox can count and
   * rank them in the main query instead of aggregating per contributor first.
   */
  onePerCell: boolean;
  /** The dataset's unique key through this binding, where it is the dataset itself: what names one of its rows. */
  rowKey?: AstNode[];
};

export type QueryAnalysis = {
  kind: 'aggregate' | 'row_level';
  datasets: string[];
  columnsUsed: SourceColumn[];
  strictestGrade: Grade;
  /** The outermost node, edited to carry privacy units through derived relations. */
  node: AstNode;
  /** Outermost aggregation only. */
  groupExpressions: AstNode[];
  units: UnitReference[];
  measures: Measure[];
  /**
   * `hiddenWhenSuppressed`: a group key computed from a sensitive column (a bin of income, say) or a quasi-
   * identifier (a birth date, a stop). In a suppressed cell such a key can be the value itself — `GROUP BY
   * floor(income)` with a WHERE that isolates one person — or a combination of quasi-identifiers that only a
   * few people have, whose listing alone tells that they are in the data; disclosure control withholds it with
   * the cell's values.
   */
  outputColumns: Array<{ name: string; role: 'group_key' | 'count' | 'measure' | 'other_aggregate' | 'row'; hiddenWhenSuppressed?: true }>;
  /**
   * The outermost HAVING on aggregates, and ORDER BY on aggregates or sensitive keys with its LIMIT, taken out of
   * the SQL (`node` no longer has them) to be applied to the checked output, where suppressed cells have no values.
   */
  afterRelease?: OutputOrder;
  /**
   * Columns computed by window functions over the outermost aggregation, from its released output, with the ORDER
   * BY and LIMIT that follow them (derived-columns.ts). `outputColumns` are the released columns without them.
   */
  derived?: DerivedColumns;
  /**
   * Figures a HAVING compares that the query does not output (`HAVING count(*) >= 50` beside `sum(kwh)`): the last
   * this many of `outputColumns`, computed and checked like any figure, used by the HAVING on the checked output,
   * then dropped. Analyses before: none.
   */
  hiddenOutputs?: number;
};

/**
 * The output's columns as the operator wrote them: without a HAVING's hidden figures, with window functions' columns
 * in place (role `derived`). What a dry run lists, and what DuckDB must find binding the SQL as submitted.
 */
export function outputColumnsAsWritten(analysis: Pick<QueryAnalysis, 'outputColumns' | 'derived' | 'hiddenOutputs'>): Array<{ name: string; role: string; hiddenWhenSuppressed?: true }> {
  const released = analysis.outputColumns.slice(0, analysis.outputColumns.length - (analysis.hiddenOutputs ?? 0));
  return withDerivedNames<{ name: string; role: string; hiddenWhenSuppressed?: true }>(released, analysis.derived, (name) => ({ name, role: 'derived' }));
}

const unitColumnName = (dataset: string, binding: string) => `__pds_unit_${dataset}_${binding}`.slice(0, 63);
const reservedPrefix = '__pds_';

const aggregateFunctions = new Set([
  'count', 'count_star', 'sum', 'avg', 'mean', 'min', 'max', 'list', 'array_agg', 'string_agg', 'group_concat', 'listagg',
  'first', 'last', 'any_value', 'arbitrary', 'arg_max', 'arg_min', 'argmax', 'argmin', 'max_by', 'min_by', 'median', 'mode',
  'quantile', 'quantile_cont', 'quantile_disc', 'approx_quantile', 'reservoir_quantile', 'stddev', 'stddev_samp',
  'stddev_pop', 'variance', 'var_samp', 'var_pop', 'bool_and', 'bool_or', 'histogram', 'histogram_exact',
  'approx_count_distinct', 'approx_top_k', 'bit_and', 'bit_or', 'bit_xor', 'bitstring_agg', 'product', 'entropy',
  'kurtosis', 'kurtosis_pop', 'skewness', 'corr', 'covar_pop', 'covar_samp', 'regr_slope', 'regr_intercept',
  'regr_r2', 'regr_count', 'regr_avgx', 'regr_avgy', 'regr_sxx', 'regr_syy', 'regr_sxy', 'fsum', 'sumkahan',
  'kahan_sum', 'favg', 'sum_no_overflow', 'geomean', 'geometric_mean', 'mad', 'every', 'logical_and', 'logical_or',
]);

function aggregateKind(name: string, distinct: boolean): AggregateName | undefined {
  switch (name) {
    case 'count_star':
      return 'count';
    case 'count':
      return distinct ? 'count_distinct' : 'count';
    case 'sum':
      return distinct ? undefined : 'sum';
    case 'avg':
    case 'mean':
      return distinct ? undefined : 'avg';
    // The population forms are the same figures (Σx, Σx², n) divided by n: the policy names them by the sample form.
    // Over DISTINCT values, as sum and avg, they add up values no contributor can be weighed by.
    case 'stddev':
    case 'stddev_samp':
    case 'stddev_pop':
      return distinct ? undefined : 'stddev_samp';
    case 'variance':
    case 'var_samp':
    case 'var_pop':
      return distinct ? undefined : 'var_samp';
    case 'bool_and':
    case 'every':
      return 'bool_and';
    case 'bool_or':
      return 'bool_or';
    default:
      // corr, covar_*, regr_*: the policy's own names.
      return !distinct && pairedAggregates.has(name as AggregateName) ? (name as AggregateName) : undefined;
  }
}

/** Quantiles a differentially private job may ask for (`median(x)`, `quantile_cont(x, 0.9)`, …). */
export const dpQuantileFunctions = new Set(['median', 'quantile', 'quantile_cont', 'quantile_disc']);

const allowedOperators = new Set(['+', '-', '*', '/', '//', '%', '~~', '!~~', '~~*', '!~~*', '^', '**']);

/**
 * `selective`: computed by something that treats rows differently by their values — a condition, a case, a
 * step or piecewise function, an aggregate's FILTER — or a boolean column. Summed, such a value adds up only
 * some of a cell's rows: see `Measure.selective`.
 *
 * `capped`: a sensitive value replaced by another depending on its size — `least(kwh, X)`, `CASE WHEN kwh > X
 * THEN X ELSE kwh END` — which leaves every row a non-zero part, so no count of left-out rows sees it, while the
 * plain total minus the capped one is what the largest contributors hold above the cap.
 *
 * `reshaped`: a sensitive value put through anything but adding, subtracting and scaling — abs, round, %, a power,
 * exp, a product or ratio of two sensitive values — each of which can make a cap in disguise (see `reshapes`).
 */
type RelationColumn = { name: string; sources: SourceColumn[]; aggregated: boolean; selective?: boolean; capped?: boolean; reshaped?: boolean; banded?: boolean };
type Relation = {
  columns: RelationColumn[];
  /** Privacy units of non-open datasets reachable through this relation, by hidden column name. */
  units: Array<{ dataset: string; columnName: string }>;
  allOpen: boolean;
};
type Binding = { alias: string; relation: Relation; baseDataset?: string };
type Scope = { bindings: Binding[]; ctes: Map<string, { relation: Relation; node: AstNode }>; selectItems?: Array<{ alias: string; lineage: Lineage }> };
/**
 * An aggregate's `lineage` is its argument's, with the FILTER folded in as `argument` has it; `second` is a paired
 * aggregate's other argument (`corr(x, y)`), folded in the same way. `banded`: a derived relation's column whose
 * every sensitive value is binned (see `unbinnedSensitive`).
 */
type Lineage = {
  sources: SourceColumn[];
  aggregated: boolean;
  aggregates: Array<{ kind: AggregateName; node: AstNode; argument?: AstNode; second?: AstNode; lineage: Lineage }>;
  selective?: boolean;
  capped?: boolean;
  reshaped?: boolean;
  banded?: boolean;
};
type Place = 'select' | 'where' | 'join' | 'group' | 'having' | 'order' | 'aggregate-filter';

const emptyLineage = (): Lineage => ({ sources: [], aggregated: false, aggregates: [] });
const merge = (...parts: Lineage[]): Lineage => ({
  sources: parts.flatMap((part) => part.sources),
  aggregated: parts.some((part) => part.aggregated),
  aggregates: parts.flatMap((part) => part.aggregates),
  selective: parts.some((part) => part.selective),
  capped: parts.some((part) => part.capped),
  reshaped: parts.some((part) => part.reshaped),
});
const readsSensitive = (lineage: Lineage) => lineage.sources.some((source) => source.class === 'sensitive');
const selectively = (lineage: Lineage): Lineage => ({ ...lineage, selective: true });
/** Functions that cap a value by another: over a sensitive column, a cap (see `RelationColumn.capped`). */
const cappingFunctions = new Set(['least', 'greatest']);
/** Functions that give a condition (true or false), as comparisons do: selections, not new values. */
const conditionFunctions = new Set(['contains', 'starts_with', 'ends_with', 'suffix', 'regexp_matches', '~~', '!~~', '~~*', '!~~*']);
/** Functions that leave a value as it is or replace only a null (or one value) by a constant: selections at most. */
const nullReplacing = new Set(['coalesce', 'ifnull', 'nullif']);

/**
 * Whether a scalar function or operator gives a sensitive value a new shape: anything but adding, subtracting,
 * and multiplying or dividing by what does not read a sensitive value. abs, round, floor, %, powers, exp, a
 * product or ratio of two sensitive values — each is a cap in disguise: (kwh + X − abs(kwh − X)) / 2 is
 * least(kwh, X), kwh − X·floor(kwh / X) leaves X for each whole X a reading holds, and exp makes a smooth step.
 * Summed, it keeps every row non-zero, so no count of left-out rows sees it, while the plain total minus it tells
 * how much the largest contributors hold above a level of the operator's choosing (see `RelationColumn.reshaped`).
 */
function reshapes(name: string, operator: boolean, children: AstNode[], parts: Lineage[]): boolean {
  if (!parts.some(readsSensitive) || conditionFunctions.has(name)) return false;
  if (!operator) return !nullReplacing.has(name);
  switch (name) {
    case '+':
    case '-':
      // A sum of sensitive values is linear, unless one of them is selected by its size: kwh + CASE WHEN kwh > X
      // THEN X − kwh ELSE 0 END is least(kwh, X), and so is kwh − (kwh > X)::INTEGER * (kwh − X).
      return parts.filter(readsSensitive).length > 1 && parts.some((part) => readsSensitive(part) && Boolean(part.selective || part.capped || part.reshaped));
    case '*':
      // A 0/1 condition is a selection, not a new value: kwh * (kwh < X)::INTEGER is sum(kwh) FILTER (WHERE kwh < X).
      return parts.filter((part, index) => readsSensitive(part) && !isIndicator(children[index])).length > 1;
    case '/':
      return readsSensitive(parts[1]!);
    default:
      return true;
  }
}

/** A condition, or one cast to a number: 1 where it holds, 0 where not. */
const isIndicator = (node: AstNode | undefined): boolean => node !== undefined && (isCondition(node) || (node.class === 'CAST' && isCondition(node.child)));

const position = (node: AstNode | undefined): number | undefined => {
  const location = node?.query_location;
  return typeof location === 'number' && location < 2 ** 53 - 1 && location >= 0 ? location : undefined;
};
const at = (node: AstNode | undefined) => (position(node) === undefined ? '' : ` (at character ${position(node)! + 1})`);

/**
 * Whether an aggregate call counts rows: `count`, or a sum of constants or conditions — `sum(1)`,
 * `sum(CASE WHEN … THEN 1 ELSE 0 END)` — which is a count too, and is rounded like one where the grade says.
 */
export const isCountAggregate = (node: AstNode): boolean =>
  node.class === 'FUNCTION' && (node.function_name === 'count' || node.function_name === 'count_star' || (node.function_name === 'sum' && addsConstants(node.children?.[0])));

/**
 * Whether summing this expression adds a constant per row — a count in disguise: a constant, a condition (DuckDB
 * sums booleans as 0 and 1), either of them cast, or a case whose every branch is one (`if(x > 1, 1, 0)` parses
 * as a case).
 */
function addsConstants(node: AstNode | null | undefined): boolean {
  if (!node) return true;
  switch (node.class) {
    case 'CONSTANT':
      return true;
    case 'CAST':
      return addsConstants(node.child);
    case 'CASE':
      return (node.case_checks as Array<{ then_expr: AstNode }>).every((check) => addsConstants(check.then_expr)) && addsConstants(node.else_expr);
    default:
      return isCondition(node);
  }
}

const isCondition = (node: AstNode) =>
  ['COMPARISON', 'CONJUNCTION', 'BETWEEN'].includes(node.class) || (node.class === 'OPERATOR' && /^(OPERATOR_(NOT|IS_NULL|IS_NOT_NULL)|COMPARE_(IN|NOT_IN))$/.test(String(node.type)));

const isNullOrZero = (node: AstNode | null | undefined): boolean =>
  !node || (node.class === 'CONSTANT' && (node.value?.is_null === true || Number(node.value?.value) === 0)) || (node.class === 'CAST' && isNullOrZero(node.child));

/** CASE WHEN condition THEN value END, placed where `at` is, so that a refusal of it names the operator's text. */
const caseWhenAt = (condition: AstNode, value: AstNode, at: AstNode): AstNode => caseWhen(condition, value, nullValue(), at.query_location ?? 0);

/**
 * `bool_or(c)` says whether any row of the cell meets c, `bool_and(c)` whether any fails it: each is a count of
 * those rows compared with zero — "one of this cell's firms is in sector y" is the count of such firms, ≥ 1 — so
 * they are checked as the counts CASE WHEN c THEN 1 END and CASE WHEN NOT c THEN 1 END (own contributors at the
 * threshold or none, and none is a zero where zeros are withheld). Undefined for other aggregates.
 */
function witnessRows(aggregate: { kind: AggregateName; node: AstNode; argument?: AstNode }): AstNode | undefined {
  if ((aggregate.kind !== 'bool_or' && aggregate.kind !== 'bool_and') || !aggregate.argument) return undefined;
  const argument = structuredClone(aggregate.argument);
  const witness = aggregate.kind === 'bool_or' ? argument : { class: 'OPERATOR', type: 'OPERATOR_NOT', alias: '', query_location: 0, children: [argument] };
  return caseWhenAt(witness, integer(1), aggregate.node);
}

/**
 * What a paired aggregate (`corr(x, y)`) adds up: x and y over the rows where the other is present too, and their
 * product (in DOUBLE, which does not overflow where two integers' product would). The product is a selection: it
 * is zero wherever either value is.
 */
function pairedParts(x: AstNode, y: AstNode): Array<{ argument: AstNode; selective: boolean }> {
  return [
    { argument: caseWhen(isNotNull(y), x, nullValue(), x.query_location ?? 0), selective: false },
    { argument: caseWhen(isNotNull(x), y, nullValue(), y.query_location ?? 0), selective: false },
    { argument: operator('*', [toDouble(x), toDouble(y)]), selective: true },
  ];
}

/** CASE WHEN filter THEN argument END: an aggregate's argument with its FILTER folded in. */
const filteredArgument = (filter: AstNode, argument: AstNode): AstNode => caseWhenAt(filter, argument, argument);

/** Whether an expression mentions, unqualified, any of `names` (anywhere in its tree). */
function namesAny(node: unknown, names: Set<string>): boolean {
  if (names.size === 0 || node === null || typeof node !== 'object') return false;
  const record = node as AstNode;
  if (record.class === 'COLUMN_REF' && Array.isArray(record.column_names) && record.column_names.length === 1 && names.has(String(record.column_names[0]))) return true;
  return Object.values(record).some((value) => namesAny(value, names));
}

/** Whether an expression aggregates at its own level (aggregates inside its subqueries belong to those). */
function aggregatesAtOwnLevel(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(aggregatesAtOwnLevel);
  const record = value as AstNode;
  if (record.class === 'SUBQUERY' || record.type === 'SELECT_NODE' || record.type === 'SET_OPERATION_NODE') return false;
  if (record.class === 'FUNCTION' && aggregateFunctions.has(String(record.function_name).toLowerCase())) return true;
  return Object.values(record).some(aggregatesAtOwnLevel);
}

/**
 * Whether a SELECT aggregates: it groups, or its select list or HAVING holds an aggregate at its own level (one
 * inside a window function's argument too: DuckDB computes it by the grouping, before the window).
 */
function aggregates(node: AstNode): boolean {
  return node.group_expressions.length > 0 || node.aggregate_handling !== 'STANDARD_HANDLING' || aggregatesAtOwnLevel(node.select_list) || aggregatesAtOwnLevel(node.having);
}

const positionalReference = (position: number, at: AstNode): AstNode => ({ ...integer(position), query_location: at.query_location ?? 0 });

/**
 * Spells out DuckDB's GROUP BY ALL (every select item without an aggregate) and ORDER BY ALL (every select item,
 * left to right) as the positions they stand for, in place, in every query node. The analyser then checks, and the
 * sandbox runs, the same explicit query: nothing is left for DuckDB to infer that the analyser did not see. An
 * ORDER BY ALL over `*` is left alone: its positions are not known before binding, and it is refused as before
 * (name the columns to sort by).
 */
function spellOutAll(root: AstNode): void {
  visitNodes(root, (node) => {
    if (node.type !== 'SELECT_NODE' || !Array.isArray(node.select_list)) return;
    const items = node.select_list as AstNode[];
    if (node.aggregate_handling === 'FORCE_AGGREGATES') {
      const keys = items.flatMap((item, index) => (aggregatesAtOwnLevel(item) ? [] : [index + 1]));
      node.group_expressions = keys.map((position) => positionalReference(position, items[position - 1]!));
      node.group_sets = keys.length > 0 ? [keys.map((_, index) => index)] : [];
      node.aggregate_handling = 'STANDARD_HANDLING';
    }
    for (const modifier of (node.modifiers ?? []) as AstNode[]) {
      const orders = modifier.type === 'ORDER_MODIFIER' ? (modifier.orders as AstNode[]) : [];
      const all = orders.length === 1 && orders[0]!.expression?.class === 'STAR' && orders[0]!.expression.columns === true;
      if (!all || items.some((item) => item.class === 'STAR')) continue;
      const { type, null_order } = orders[0]!;
      modifier.orders = items.map((item, index) => ({ type, null_order, expression: positionalReference(index + 1, item) }));
    }
  });
}

/**
 * `count_if(c)` (and `countif`) is `count(*) FILTER (WHERE c)`: written that way, in place, so that it is analysed,
 * checked and noised as the filtered count it is — its contributors are the units whose rows meet c — with no rules
 * of its own. A FILTER it already has is kept: `count_if(c) FILTER (WHERE f)` counts rows meeting both. An unnamed
 * select item keeps the name it would have had.
 */
function spellOutCountIf(root: AstNode): void {
  visitNodes(
    root,
    (node) => {
      if (node.type !== 'SELECT_NODE' || !Array.isArray(node.select_list)) return;
      (node.select_list as AstNode[]).forEach((item, index) => {
        if (isCountIf(item) && !item.alias) item.alias = defaultItemName(item, index);
      });
    },
    (node) => {
      if (!isCountIf(node)) return;
      const condition = (node.children as AstNode[])[0]!;
      node.filter = node.filter ? allOf([node.filter as AstNode, condition], node.query_location ?? 0) : condition;
      node.function_name = 'count_star';
      node.children = [];
    },
  );
}

const isCountIf = (node: AstNode): boolean =>
  node.class === 'FUNCTION' && ['count_if', 'countif'].includes(String(node.function_name).toLowerCase()) && !node.schema && !node.catalog && !node.distinct && node.children?.length === 1;

export type AnalysisContext = {
  catalogue: Map<string, CatalogueDataset>;
  requested: string[];
  policy: DisclosurePolicy;
  /**
   * A differentially private job: its output has no suppressed cells to give away, only noisy ones, so the
   * outermost HAVING and ORDER BY may use its figures (they filter and sort the noisy output, after the noise).
   */
  noisyRelease?: boolean;
  /** The query is the platform's statistics query around a model's training rows (src/models/model-job.ts). */
  modelStatistics?: boolean;
};

export function analyseQuery(
  statements: Array<{ node: AstNode }>,
  context: AnalysisContext,
): QueryAnalysis {
  if (statements.length !== 1) {
    throw new QueryRejected('MULTIPLE_STATEMENTS', 'a job runs exactly one SELECT statement');
  }
  const analyser = new Analyser(context);
  const root = statements[0]!.node;
  spellOutCountIf(root);
  // Window functions over the outermost aggregation are computed from its released output (derived-columns.ts);
  // anywhere else the analyser allows them over open data alone, as over other data they can output one person's
  // values.
  const derived = root.type === 'SELECT_NODE' && aggregates(root) ? takeDerivedColumns(root, aggregatesAtOwnLevel, (detail, node, rule) => new QueryRejected('WINDOW_FUNCTION', `${detail}${at(node)}${rule ? `. ${rule}` : ''}`)) : undefined;
  // (A QUALIFY's own window columns, after the output's, carry reserved names of the analyser's choosing.)
  for (const column of (derived?.columns ?? []).filter((entry) => entry.outputIndex < derived!.width)) {
    if (column.name.startsWith(reservedPrefix)) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
  }
  spellOutAll(root);
  const analysis = analyser.analyseOutermost(root);
  return derived ? { ...analysis, derived } : analysis;
}

// Each branch's cells would be checked without the others, so a total appended to a table would let a suppressed
// cell be recovered from it. Said the same whether the branches aggregate (the usual total row) or not.
const outermostSetOperation =
  'a set operation (UNION, EXCEPT, INTERSECT) may be the outermost query only over open data: each branch would be a table of its own, checked without the others; run a job per table (a total is a job without the key), or UNION ALL rows in a CTE and aggregate its result';

class Analyser {
  readonly used = new Map<string, SourceColumn>();
  readonly datasetsUsed = new Set<string>();
  /** Select items the analyser added itself (a HAVING's figures), which may carry reserved names. */
  readonly addedItems = new WeakSet<AstNode>();

  constructor(private readonly context: AnalysisContext) {}

  analyseOutermost(root: AstNode): QueryAnalysis {
    if (root.type !== 'SELECT_NODE') {
      // A set operation at the top: fine for open data only (its rows leave as they are).
      const relation = this.queryNode(root, new Map(), { outermost: true });
      if (!relation.allOpen) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', outermostSetOperation);
      return this.result(root, 'row_level', [], [], [], []);
    }
    const scope = this.selectScope(root, new Map());
    const aggregating = aggregates(root);
    if (root.aggregate_handling !== 'STANDARD_HANDLING') {
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'this form of aggregation is not supported; name the group keys');
    }
    const allOpen = scope.bindings.every((binding) => binding.relation.allOpen);
    const hiddenOutputs = aggregating && !allOpen && !this.context.noisyRelease ? this.hideHavingFigures(root) : 0;
    const items = this.selectItems(root, scope, { outermost: true, allOpen });

    if (!aggregating) {
      if (!allOpen) {
        throw new QueryRejected('ROW_LEVEL_OUTPUT', 'only aggregates leave the domain for data that is not open: add GROUP BY and aggregate functions');
      }
      // QUALIFY filters the rows like WHERE, after the window functions: checked as a WHERE is, so that nothing in it
      // (a subquery over another dataset) decides which open rows leave.
      if (root.qualify) this.expression(root.qualify, { ...scope, selectItems: items }, 'where', {});
      this.modifiers(root, scope);
      return this.result(root, 'row_level', [], [], [], items.map((item) => ({ name: item.alias, role: 'row' as const })));
    }

    // Totals and subtotals (ROLLUP, CUBE, GROUPING SETS) are cells like any other — each with its own contributors
    // and dominance, and in the lines secondary suppression balances (execution-plan.ts, `levelPosition`). A
    // differentially private plan makes each set a table of its own, with its share of ε (dp-plan.ts, `groupSets`).
    const groupingSets = root.group_sets.length > 1;
    if (root.modifiers.some((modifier: AstNode) => modifier.type === 'DISTINCT_MODIFIER')) {
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'SELECT DISTINCT is not supported on an aggregation');
    }
    root.group_expressions = root.group_expressions.map((expression: AstNode) => this.spelledOutGroup(expression, root, scope, items));
    const groups = root.group_expressions.map((expression: AstNode) => {
      const lineage = this.entryLineage(expression, { ...scope, selectItems: items }, 'group', {});
      if (!allOpen) this.checkGroupKey(expression, lineage, { ...scope, selectItems: items });
      return expression;
    });
    // Suppressed cells are listed (with their keys and a code), so a HAVING or ORDER BY on an aggregate, run on
    // the exact figures, would let the listing itself answer questions about suppressed values — "is this cell's
    // sum above x?", one query at a time, or how it ranks among the released ones — and an ORDER BY on a sensitive
    // key would place a withheld cell between the released values its key lies between. For protected data they
    // are therefore taken out of the SQL and applied to the released output (`afterRelease`), where suppressed
    // cells have no values: post-processing of what is released tells nothing more. (A differentially private
    // plan does the same with its noisy output.) HAVING and ORDER BY on other group keys stay in the SQL.
    // A bare name there that is also an aggregate's alias counts as the aggregate whatever it resolves to here:
    // DuckDB reads `ORDER BY kwh` and `HAVING kwh > 0` as the output column `sum(kwh) AS kwh`, not the table's.
    const aggregateAliases = new Set(items.filter((item) => item.lineage.aggregated).map((item) => item.alias));
    const sensitiveAliases = new Set(items.filter((item) => item.lineage.sources.some((source) => source.class === 'sensitive')).map((item) => item.alias));
    const checkedRelease = !allOpen && !this.context.noisyRelease;
    const afterRelease: OutputOrder = {};
    if (root.having) {
      const lineage = this.expression(root.having, { ...scope, selectItems: items }, 'having', {});
      if (checkedRelease && (lineage.aggregated || namesAny(root.having, aggregateAliases))) {
        const having = root.having as AstNode;
        afterRelease.having = outputConditionOf(having, root.select_list, (detail) => new QueryRejected('AGGREGATE_CONDITION', `HAVING on an aggregate of protected data filters the released output: ${detail}${at(having)}`));
        root.having = null;
      }
    }
    let sortedAfterRelease = false;
    this.modifiers(root, { ...scope, selectItems: items }, (node, lineage) => {
      if (checkedRelease && (lineage.aggregated || namesAny(node, aggregateAliases) || readsSensitive(lineage) || namesAny(node, sensitiveAliases))) sortedAfterRelease = true;
    });
    // A LIMIT cuts what the HAVING kept: with the HAVING applied after release, the LIMIT (and the ORDER BY it
    // follows) must be too, or it would cut the rows before the HAVING chose among them.
    if (afterRelease.having && root.modifiers.some((modifier: AstNode) => modifier.type === 'LIMIT_MODIFIER')) sortedAfterRelease = true;
    if (sortedAfterRelease) {
      // LIMIT and OFFSET cut the sorted output, so they go with the ORDER BY.
      Object.assign(afterRelease, outputOrderOf(root, (detail) => new QueryRejected('AGGREGATE_CONDITION', `ORDER BY on an aggregate or a sensitive key of protected data sorts the released output: ${detail}`)));
      root.modifiers = root.modifiers.filter((modifier: AstNode) => modifier.type !== 'ORDER_MODIFIER' && modifier.type !== 'LIMIT_MODIFIER');
    }
    if (root.qualify) throw new QueryRejected('WINDOW_FUNCTION', `QUALIFY filters by a window function's column over the output: name the window function in SELECT (… AS place), then QUALIFY place <= 3${at(root.qualify)}`);
    if (root.sample) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'USING SAMPLE is not allowed: random samples of protected data are not released');

    const outputColumns = items.map((item) => {
      if (!item.lineage.aggregated) {
        if (!allOpen) this.checkGroupKey(item.node, item.lineage, scope);
        const revealing = !allOpen && item.lineage.sources.some((source) => source.class === 'sensitive' || source.class === 'quasi_identifier');
        return { name: item.alias, role: 'group_key' as const, ...(revealing ? { hiddenWhenSuppressed: true as const } : {}) };
      }
      const kinds = item.lineage.aggregates.map((aggregate) => aggregate.kind);
      if (kinds.length > 0 && item.lineage.aggregates.every((aggregate) => isCountAggregate(aggregate.node))) return { name: item.alias, role: 'count' as const };
      if (kinds.some((kind) => kind === 'sum' || kind === 'avg')) return { name: item.alias, role: 'measure' as const };
      return { name: item.alias, role: 'other_aggregate' as const };
    });

    // A subtotal holds several rows of one contributor, whatever the base cells hold.
    const units = this.unitsAtScope(scope).map((unit) => ({ ...unit, onePerCell: !groupingSets && this.onePerCell(unit, scope, groups) }));
    const measures: Measure[] = [];
    items.forEach((item, outputIndex) => {
      for (const aggregate of item.lineage.aggregates) {
        // A variance or standard deviation gives away one dominant value as surely as a sum does (with one large
        // value among small ones, sqrt(var · (n − 1)) is close to it), so its contributions are checked the same way.
        if (['sum', 'avg', 'stddev_samp', 'var_samp'].includes(aggregate.kind) && aggregate.argument) {
          for (const unit of this.unitsAddedUp(aggregate.lineage, units)) {
            measures.push({ outputIndex, aggregate: aggregate.kind, argument: aggregate.argument, unit, selective: Boolean(aggregate.lineage.selective) });
          }
        }
        // A correlation, covariance or regression line is made of the sums of x, y and x·y over the rows where both
        // are present, and gives those sums back with the cell's count and means (Σxy = n·(covar_pop + x̄·ȳ)): each
        // is checked as a sum is. x·y leaves out the rows where either is zero or missing — `covar_pop(kwh, CASE WHEN
        // c THEN 1 ELSE 0 END)` with avg(kwh) gives the kwh of the few rows c leaves out — so it is always weighed
        // as a selection.
        if (pairedAggregates.has(aggregate.kind) && aggregate.argument && aggregate.second) {
          for (const part of pairedParts(aggregate.argument, aggregate.second)) {
            for (const unit of this.unitsAddedUp(aggregate.lineage, units)) {
              measures.push({ outputIndex, aggregate: aggregate.kind, argument: part.argument, unit, selective: part.selective || Boolean(aggregate.lineage.selective) });
            }
          }
        }
        // A count of only some of the cell's rows — a FILTER, or the non-null values of an expression — is a
        // small table hidden in the cell (`count(*) FILTER (WHERE diagnosis = …)`): it is checked as the sum of
        // CASE WHEN <counted> THEN 1 END, so that its own contributors meet the threshold — in every unit, as
        // the cell's contributors are (a join can make one person's rows many other people's rows).
        const counted = this.countedRows(aggregate, units) ?? witnessRows(aggregate);
        if (counted) for (const unit of units) measures.push({ outputIndex, aggregate: 'count', argument: counted, unit, selective: true });
      }
    });
    const analysis = this.result(root, 'aggregate', groups, units, measures, outputColumns);
    return { ...analysis, ...(Object.keys(afterRelease).length > 0 ? { afterRelease } : {}), ...(hiddenOutputs > 0 ? { hiddenOutputs } : {}) };
  }

  /**
   * What `GROUP BY 1` and `GROUP BY alias` stand for, as DuckDB binds them (a bare name that is a column of FROM is
   * that column). The outermost query's are replaced by it, so that the hidden disclosure queries, which copy the
   * group keys into their own select lists, group by the same thing; an inner query's are read through it to find
   * its privacy unit.
   */
  private spelledOutGroup(expression: AstNode, root: AstNode, scope: Scope, items: Array<{ alias: string; node: AstNode }>): AstNode {
    if (expression.class === 'CONSTANT' && expression.value?.type?.id === 'INTEGER') {
      const item = root.select_list[Number(expression.value.value) - 1];
      if (!item) throw new QueryRejected('UNKNOWN_COLUMN', `GROUP BY ${String(expression.value.value)} names no output column${at(expression)}`);
      return { ...structuredClone(item), alias: '' };
    }
    if (expression.class === 'COLUMN_REF' && expression.column_names.length === 1) {
      const name = expression.column_names[0];
      const isColumn = scope.bindings.some((binding) => binding.relation.columns.some((column) => column.name === name));
      const index = items.findIndex((item) => item.alias === name);
      if (!isColumn && index >= 0) return { ...structuredClone(root.select_list[index]), alias: '' };
    }
    return expression;
  }

  /**
   * The figures a HAVING compares that the select list does not hold, added to it under reserved names (in place;
   * their number). Each is then analysed and checked like an output figure — its own contributors, dominance — so
   * the HAVING, applied to the checked output, compares only what could have been released: a figure withheld in
   * a cell is null there, and the cell is left out. Without this, `HAVING count(*) >= 50` beside `sum(kwh)` was
   * refused and had to be written as an extra output column. A differentially private job keeps refusing it: its
   * figure would need noise and budget of its own.
   */
  private hideHavingFigures(root: AstNode): number {
    const items = root.select_list as AstNode[];
    let added = 0;
    const visit = (node: AstNode | null | undefined): void => {
      if (!node) return;
      if (node.type === 'CONJUNCTION_AND' || node.type === 'CONJUNCTION_OR' || node.type === 'OPERATOR_NOT' || node.type === 'COMPARE_IN' || node.type === 'COMPARE_NOT_IN' || node.type === 'OPERATOR_IS_NULL' || node.type === 'OPERATOR_IS_NOT_NULL') {
        (node.children as AstNode[]).forEach(visit);
        return;
      }
      if (node.class === 'COMPARISON') {
        visit(node.left);
        visit(node.right);
        return;
      }
      // As the HAVING after release reads it (output-order.ts): an output column by name or as written is listed.
      if (node.class === 'CONSTANT' || outputIndexOf(node, items) >= 0 || !aggregatesAtOwnLevel(node)) return;
      const item = { ...structuredClone(node), alias: `${reservedPrefix}having_${added++}` };
      this.addedItems.add(item);
      items.push(item);
    };
    visit(root.having);
    return added;
  }

  private result(
    node: AstNode,
    kind: QueryAnalysis['kind'],
    groupExpressions: AstNode[],
    units: UnitReference[],
    measures: Measure[],
    outputColumns: QueryAnalysis['outputColumns'],
  ): QueryAnalysis {
    const datasets = [...this.datasetsUsed].sort();
    return {
      kind,
      datasets,
      columnsUsed: [...this.used.values()],
      strictestGrade: strictestGrade(datasets.map((id) => this.context.catalogue.get(id)!.grade)),
      node,
      groupExpressions,
      units,
      measures,
      outputColumns,
    };
  }

  /** Analyses a query node that feeds another (CTE, subquery, set operation branch) and returns its relation. */
  private queryNode(node: AstNode, outerCtes: Scope['ctes'], options: { outermost?: boolean; outermostBranch?: boolean } = {}): Relation {
    if (node.type === 'SET_OPERATION_NODE') {
      if (node.modifiers?.length) this.checkModifiersShallow(node);
      const branchOptions = { outermostBranch: Boolean(options.outermost || options.outermostBranch) };
      const left = this.queryNode(node.left, this.withCtes(node, outerCtes), branchOptions);
      const right = this.queryNode(node.right, this.withCtes(node, outerCtes), branchOptions);
      if (!options.outermost && (!left.allOpen || !right.allOpen)) {
        if (!node.setop_all && String(node.setop_type) === 'UNION') {
          throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'UNION without ALL is not supported over protected data; use UNION ALL');
        }
        if (String(node.setop_type) !== 'UNION') {
          // UNION BY NAME pairs columns by name, not by position as the lineage here does: refused with the others.
          throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'only UNION ALL combines protected data (not UNION BY NAME, EXCEPT or INTERSECT)');
        }
        this.alignUnits(node, left, right);
      }
      return {
        columns: left.columns.map((column, index) => ({
          name: column.name,
          sources: [...column.sources, ...(right.columns[index]?.sources ?? [])],
          aggregated: column.aggregated || Boolean(right.columns[index]?.aggregated),
          selective: Boolean(column.selective || right.columns[index]?.selective),
          capped: Boolean(column.capped || right.columns[index]?.capped),
          reshaped: Boolean(column.reshaped || right.columns[index]?.reshaped),
          banded: Boolean(column.banded && right.columns[index]?.banded),
        })),
        units: mergeUnits(left.units, right.units),
        allOpen: left.allOpen && right.allOpen,
      };
    }
    if (node.type !== 'SELECT_NODE') {
      // A recursive CTE has no fixed number of rows for the analyser to follow; other node types are DuckDB's own.
      const what = node.type === 'RECURSIVE_CTE_NODE' ? 'WITH RECURSIVE is' : `this query form (${String(node.type).toLowerCase().replaceAll('_', ' ')}) is`;
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `${what} not supported; write a CTE of one SELECT`);
    }
    const scope = this.selectScope(node, outerCtes);
    const allOpen = scope.bindings.every((binding) => binding.relation.allOpen);
    if (node.aggregate_handling !== 'STANDARD_HANDLING') throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'this form of aggregation is not supported; name the group keys');
    if (node.sample && !allOpen) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'USING SAMPLE is not allowed on protected data');
    if (node.qualify) throw new QueryRejected('WINDOW_FUNCTION', `QUALIFY is not allowed${at(node.qualify)}`);
    const items = this.selectItems(node, scope, { outermost: false, allOpen });
    const aggregating = aggregates(node);
    // An inner aggregation's rows are per privacy unit (or of open data); a grouping set without the unit would add
    // rows of everyone's total under a null unit, which the contributor counts downstream do not see.
    if (node.group_sets.length > 1 && !allOpen) {
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'GROUPING SETS, ROLLUP and CUBE are allowed only in the outermost query: an inner aggregation of protected data has one row per contributor');
    }
    node.group_expressions.forEach((expression: AstNode) => this.entryLineage(expression, { ...scope, selectItems: items }, 'group', { innerGroup: true }));
    if (node.having) this.expression(node.having, { ...scope, selectItems: items }, 'having', {});
    this.modifiers(node, { ...scope, selectItems: items });

    const relation: Relation = {
      columns: items.map((item) => ({
        name: item.alias,
        sources: item.lineage.sources,
        aggregated: item.lineage.aggregated,
        selective: Boolean(item.lineage.selective),
        capped: Boolean(item.lineage.capped),
        reshaped: Boolean(item.lineage.reshaped),
        // A band computed here (`floor(kwh / 100) AS band`) stays a band where an outer query groups by it. A star's
        // items carry their column's own lineage, not an expression to look into.
        banded: item.node.class === 'STAR' ? Boolean(item.lineage.banded) : !item.lineage.aggregated && readsSensitive(item.lineage) && !this.unbinnedSensitive(item.node, scope, 'select'),
      })),
      units: [],
      allOpen,
    };
    if (allOpen) return relation;
    if (node.modifiers.some((modifier: AstNode) => modifier.type === 'DISTINCT_MODIFIER')) {
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'SELECT DISTINCT inside a query over protected data is not supported');
    }
    if (node.modifiers.some((modifier: AstNode) => modifier.type === 'LIMIT_MODIFIER' || modifier.type === 'LIMIT_PERCENT_MODIFIER')) {
      throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'LIMIT inside a query over protected data is not supported: it selects individuals');
    }
    // Carry the privacy unit of every protected dataset up through this relation.
    for (const unit of this.unitsAtScope(scope)) {
      const hidden = unitColumnName(unit.dataset, unit.binding);
      if (aggregating && !node.group_expressions.some((group: AstNode) => refersToUnit(this.spelledOutGroup(group, node, scope, items), unit, scope))) {
        if (options.outermostBranch) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', outermostSetOperation);
        throw new QueryRejected(
          'UNSUPPORTED_QUERY_SHAPE',
          `an inner aggregation over ${unit.dataset} must group by its privacy unit (${this.context.catalogue.get(unit.dataset)!.privacyUnit}); only the outermost query aggregates across people or enterprises${at(node)}`,
        );
      }
      node.select_list.push({ ...structuredClone(unit.expression), alias: hidden });
      relation.units.push({ dataset: unit.dataset, columnName: hidden });
    }
    return relation;
  }

  private alignUnits(node: AstNode, left: Relation, right: Relation) {
    // Both branches must expose the same hidden unit columns in the same order; a branch that lacks one
    // contributes NULL there.
    const all = mergeUnits(left.units, right.units);
    for (const [side, relation] of [
      ['left', left],
      ['right', right],
    ] as const) {
      const branch = node[side] as AstNode;
      if (branch.type !== 'SELECT_NODE') {
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'nested set operations over protected data are not supported');
      }
      const hiddenCount = relation.units.length;
      const visible = branch.select_list.slice(0, branch.select_list.length - hiddenCount);
      const hiddenByName = new Map(branch.select_list.slice(visible.length).map((item: AstNode) => [item.alias, item]));
      branch.select_list = [
        ...visible,
        ...all.map((unit) => hiddenByName.get(unit.columnName) ?? nullValue(unit.columnName)),
      ];
      relation.units = all;
    }
  }

  private withCtes(node: AstNode, outer: Scope['ctes']): Scope['ctes'] {
    const ctes = new Map(outer);
    for (const entry of node.cte_map?.map ?? []) {
      const name = String(entry.key);
      if (name.startsWith(reservedPrefix)) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
      if ((entry.value?.key_targets ?? []).length > 0) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', 'recursive CTEs are not supported');
      const query = entry.value.query.node;
      const relation = this.queryNode(query, ctes);
      const aliases: string[] = entry.value.aliases ?? [];
      aliases.forEach((alias, index) => {
        if (relation.columns[index]) relation.columns[index]!.name = alias;
      });
      ctes.set(name, { relation, node: query });
    }
    return ctes;
  }

  private selectScope(node: AstNode, outerCtes: Scope['ctes']): Scope {
    const ctes = this.withCtes(node, outerCtes);
    const bindings: Binding[] = [];
    const scope: Scope = { bindings, ctes };
    if (node.from_table) this.tableReference(node.from_table, scope);
    if (node.where_clause) this.expression(node.where_clause, scope, 'where', {});
    return scope;
  }

  private tableReference(reference: AstNode, scope: Scope): void {
    switch (reference.type) {
      case 'EMPTY':
      case 'EMPTY_FROM':
        return;
      case 'BASE_TABLE': {
        if (reference.schema_name || reference.catalog_name) {
          throw new QueryRejected('UNKNOWN_TABLE', `only catalogue datasets can be queried; ${reference.schema_name || reference.catalog_name}.${reference.table_name} is not one${at(reference)}`);
        }
        if (reference.at_clause) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `AT clauses are not supported${at(reference)}`);
        const name = String(reference.table_name);
        const alias = String(reference.alias || name);
        if (alias.startsWith(reservedPrefix)) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
        const cte = scope.ctes.get(name);
        if (cte) {
          scope.bindings.push({ alias, relation: renamed(cte.relation, reference.column_name_alias) });
          return;
        }
        const dataset = this.context.catalogue.get(name);
        if (!dataset) throw new QueryRejected('UNKNOWN_TABLE', `${name} is not a dataset in the catalogue${at(reference)}`);
        if (!this.context.requested.includes(name)) {
          throw new QueryRejected('DATASET_NOT_REQUESTED', `${name} is used but not listed in the job's datasets${at(reference)}`);
        }
        this.datasetsUsed.add(name);
        const open = dataset.openData && dataset.grade === 'L1';
        // `FROM t TABLESAMPLE 10%` is a sample on the table itself, not the query's USING SAMPLE checked below.
        if (reference.sample && !open) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `TABLESAMPLE is not allowed on protected data: random samples of it are not released${at(reference)}`);
        scope.bindings.push({
          alias,
          baseDataset: name,
          relation: renamed(
            {
              columns: dataset.columns.map((column) => ({ name: column.name, sources: [{ dataset: name, column: column.name, class: column.class }], aggregated: false, selective: column.type === 'BOOLEAN' })),
              units: open ? [] : [{ dataset: name, columnName: dataset.privacyUnit }],
              allOpen: open,
            },
            reference.column_name_alias,
          ),
        });
        return;
      }
      case 'SUBQUERY': {
        const relation = this.queryNode(reference.subquery.node, scope.ctes);
        const alias = String(reference.alias || `subquery_${scope.bindings.length}`);
        if (alias.startsWith(reservedPrefix)) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
        if (!reference.alias) reference.alias = alias;
        scope.bindings.push({ alias, relation: renamed(relation, reference.column_name_alias) });
        return;
      }
      case 'JOIN': {
        if (reference.ref_type && reference.ref_type !== 'REGULAR' && reference.ref_type !== 'CROSS' && reference.ref_type !== 'NATURAL') {
          throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `${String(reference.ref_type).toLowerCase()} joins are not supported${at(reference)}`);
        }
        if (reference.ref_type === 'NATURAL') {
          throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `write joins with ON conditions (NATURAL joins are not supported)${at(reference)}`);
        }
        const first = scope.bindings.length;
        this.tableReference(reference.left, scope);
        const middle = scope.bindings.length;
        this.tableReference(reference.right, scope);
        if ((reference.using_columns ?? []).length > 0) {
          reference.condition = this.usingAsCondition(reference, scope.bindings.slice(first, middle), scope.bindings.slice(middle));
          reference.using_columns = [];
        }
        if (reference.condition) this.expression(reference.condition, scope, 'join', {});
        // The optional side of an outer join is NULL in rows it has no match for, and a condition in its ON decides
        // which: `a LEFT JOIN b ON a.id = b.id AND b.staff <> 95` keeps every row of a but drops out of any figure of
        // b the rows of the few a condition leaves unmatched. Its columns are selections, as a FILTER's value is.
        const end = scope.bindings.length;
        const optional = reference.join_type === 'LEFT' ? [middle, end] : reference.join_type === 'RIGHT' ? [first, middle] : reference.join_type === 'FULL' || reference.join_type === 'OUTER' ? [first, end] : undefined;
        if (optional) {
          for (let index = optional[0]!; index < optional[1]!; index++) {
            const binding = scope.bindings[index]!;
            scope.bindings[index] = { ...binding, relation: { ...binding.relation, columns: binding.relation.columns.map((column) => ({ ...column, selective: true })) } };
          }
        }
        return;
      }
      case 'TABLE_FUNCTION':
        throw new QueryRejected('TABLE_FUNCTION', `table functions are not allowed: they read files, settings or metadata${at(reference)}`);
      case 'EXPRESSION_LIST':
        // A table of constants (VALUES) joined to protected rows weighs or relabels them by key: write it as a CASE.
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `a VALUES list is not supported in FROM${at(reference)}: map keys to labels or weights with CASE WHEN … THEN … END`);
      default:
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `${String(reference.type).toLowerCase().replaceAll('_', ' ')} is not supported in FROM${at(reference)}`);
    }
  }

  /**
   * `JOIN … USING (a, b)` as the ON condition it stands for (`l.a = r.a AND l.b = r.b`), written into the query, so
   * that every later check and the SQL that runs see one kind of join. DuckDB merges a USING column into one that
   * may be named without a table; here both sides keep theirs, so a bare name of it elsewhere is refused as
   * ambiguous, saying to qualify it (the usual USING column, an identifier, is only a join key anyway).
   */
  private usingAsCondition(reference: AstNode, left: Binding[], right: Binding[]): AstNode {
    const side = (bindings: Binding[], column: string, which: string) => {
      const holding = bindings.filter((binding) => binding.relation.columns.some((candidate) => candidate.name === column));
      if (holding.length !== 1) {
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `USING (${column}): ${holding.length === 0 ? `no table on the ${which} has it` : `more than one table on the ${which} has it`}; write the join with ON${at(reference)}`);
      }
      return columnRef([holding[0]!.alias, column], reference.query_location);
    };
    const equalities = (reference.using_columns as string[]).map((column) =>
      comparison('COMPARE_EQUAL', side(left, String(column), 'left'), side(right, String(column), 'right'), reference.query_location),
    );
    return equalities.length === 1 ? equalities[0]! : allOf(equalities, reference.query_location);
  }

  private selectItems(node: AstNode, scope: Scope, options: { outermost: boolean; allOpen: boolean }) {
    const items: Array<{ alias: string; lineage: Lineage; node: AstNode }> = [];
    const expanded: AstNode[] = [];
    for (const item of node.select_list as AstNode[]) {
      if (item.class === 'STAR') {
        if (item.columns || item.expr) throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `COLUMNS(...) is not supported${at(item)}`);
        const bindings = item.relation_name ? scope.bindings.filter((binding) => binding.alias === item.relation_name) : scope.bindings;
        if (bindings.length === 0) throw new QueryRejected('UNKNOWN_TABLE', `${item.relation_name} is not in FROM${at(item)}`);
        // Inside a derived relation a star is harmless: its columns are tracked and it outputs nothing itself.
        if (options.outermost && !bindings.every((binding) => binding.relation.allOpen)) {
          throw new QueryRejected('STAR_ON_PROTECTED_DATA', `* is not allowed over data that is not open: name the columns${at(item)}`);
        }
        if ((item.exclude_list ?? []).length || (item.replace_list ?? []).length || (item.rename_list ?? []).length) {
          throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `* EXCLUDE/REPLACE/RENAME is not supported${at(item)}`);
        }
        for (const binding of bindings) {
          for (const column of binding.relation.columns) {
            if (column.name.startsWith(reservedPrefix)) continue;
            for (const source of column.sources) this.use(source);
            items.push({ alias: column.name, lineage: { sources: column.sources, aggregated: column.aggregated, aggregates: [], selective: Boolean(column.selective), capped: Boolean(column.capped), reshaped: Boolean(column.reshaped), banded: Boolean(column.banded) }, node: item });
            expanded.push(columnRef([binding.alias, column.name], item.query_location));
          }
        }
        continue;
      }
      if (String(item.alias ?? '').startsWith(reservedPrefix) && !this.addedItems.has(item)) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
      const lineage = this.expression(item, scope, 'select', { outermost: options.outermost });
      items.push({ alias: String(item.alias || defaultItemName(item, items.length)), lineage, node: item });
      expanded.push(item);
    }
    // Stars are spelled out so that hidden unit columns appended later never leak through them.
    node.select_list = expanded;
    return items;
  }

  /**
   * The lineage of one GROUP BY or ORDER BY entry. Only an entry that is itself an integer (`GROUP BY 2`) names an
   * output column by position; an integer inside an expression is a number (`substr(code, 1, 2)` groups by the
   * code, not by the second output column, which is what reading every nested integer as a position did).
   */
  private entryLineage(entry: AstNode, scope: Scope, place: 'group' | 'order', flags: { innerGroup?: boolean }): Lineage {
    if (entry.class === 'CONSTANT' && entry.value?.type?.id === 'INTEGER' && scope.selectItems) {
      const item = scope.selectItems[Number(entry.value.value) - 1];
      if (item) return item.lineage;
    }
    return this.expression(entry, scope, place, flags);
  }

  private modifiers(node: AstNode, scope: Scope, checkOrder?: (expression: AstNode, lineage: Lineage) => void) {
    for (const modifier of node.modifiers as AstNode[]) {
      if (modifier.type === 'ORDER_MODIFIER') {
        for (const order of modifier.orders) {
          const lineage = this.entryLineage(order.expression, scope, 'order', {});
          checkOrder?.(order.expression, lineage);
        }
      } else if (modifier.type === 'LIMIT_MODIFIER') {
        for (const limit of [modifier.limit, modifier.offset]) if (limit) this.constantOnly(limit);
      } else if (modifier.type === 'DISTINCT_MODIFIER') {
        for (const target of modifier.distinct_on_targets ?? []) this.entryLineage(target, scope, 'order', {});
      } else {
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `${String(modifier.type).toLowerCase()} is not supported`);
      }
    }
  }

  /**
   * For a count that counts only some rows, CASE WHEN <the rows it counts> THEN 1 END; undefined for a count of
   * every row (`count(*)`) or of every contributor (`count(DISTINCT privacy_unit)`, never null).
   */
  private countedRows(aggregate: { kind: AggregateName; node: AstNode; argument?: AstNode }, units: UnitReference[]): AstNode | undefined {
    if (aggregate.kind !== 'count' && aggregate.kind !== 'count_distinct') return undefined;
    const argument = aggregate.argument;
    const countsUnit =
      argument?.class === 'COLUMN_REF' &&
      units.some((unit) => String((unit.expression.column_names as string[]).at(-1)) === String((argument.column_names as string[]).at(-1)));
    if (!aggregate.node.filter && (!argument || countsUnit)) return undefined;
    // The argument already carries the FILTER (filteredArgument); count(*) FILTER has only the filter.
    const condition = argument ? { class: 'OPERATOR', type: 'OPERATOR_IS_NOT_NULL', alias: '', query_location: 0, children: [structuredClone(argument)] } : structuredClone(aggregate.node.filter);
    return caseWhenAt(condition, integer(1), aggregate.node);
  }

  private checkModifiersShallow(node: AstNode) {
    for (const modifier of node.modifiers as AstNode[]) {
      if (modifier.type === 'LIMIT_MODIFIER') for (const limit of [modifier.limit, modifier.offset]) if (limit) this.constantOnly(limit);
    }
  }

  private constantOnly(node: AstNode) {
    if (node.class !== 'CONSTANT') throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `LIMIT and OFFSET take constants${at(node)}`);
  }

  private use(source: SourceColumn) {
    this.used.set(`${source.dataset}.${source.column}`, source);
  }

  private checkGroupKey(expression: AstNode, lineage: Lineage, scope: Scope) {
    if (lineage.aggregated) return;
    const direct = lineage.sources.find((source) => source.class === 'direct_identifier');
    if (direct) {
      throw new QueryRejected('DIRECT_IDENTIFIER_USE', `${direct.dataset}.${direct.column} is a direct identifier and cannot be a group key or an output column${at(expression)}`);
    }
    if (!readsSensitive(lineage)) return;
    const unbinned = this.unbinnedSensitive(expression, scope, 'group');
    if (unbinned) {
      const { source, node } = unbinned;
      throw new QueryRejected(
        'SENSITIVE_GROUP_KEY',
        `${source.dataset}.${source.column} is sensitive: group by a binned value (${[...this.context.policy.binningFunctionSet].join(', ')}, or a CASE whose results are constants) instead${at(node)}`,
      );
    }
  }

  /**
   * The first sensitive value a group key shows as it is. A sensitive column may appear inside a binning function
   * (`floor(kwh / 50) * 50` shows only the band) or in the condition of a CASE whose results are constants
   * (`CASE WHEN kwh < 100 THEN 'low' ELSE 'high' END` shows only the label): either way the key takes values the
   * operator chose, shared by every row of the band, and a withheld cell's band is withheld with it
   * (`hiddenWhenSuppressed`). A column a CTE or subquery computes counts as binned where its own expression was
   * (`banded`), so a band may be made in a CTE and grouped by outside it.
   */
  private unbinnedSensitive(node: AstNode | null | undefined, scope: Scope, place: 'group' | 'select'): { source: SourceColumn; node: AstNode } | undefined {
    if (!node || typeof node !== 'object') return undefined;
    if (node.class === 'FUNCTION' && this.context.policy.binningFunctionSet.has(String(node.function_name).toLowerCase())) return undefined;
    if (node.class === 'CASE') {
      const results = [...(node.case_checks as AstNode[]).map((check) => check.then_expr), node.else_expr];
      for (const result of results) {
        const found = this.unbinnedSensitive(result, scope, place);
        if (found) return found;
      }
      return undefined;
    }
    if (node.class === 'COLUMN_REF') {
      const lineage = this.expression(node, scope, place, {});
      const source = lineage.banded ? undefined : lineage.sources.find((candidate) => candidate.class === 'sensitive');
      return source ? { source, node } : undefined;
    }
    // Every field, not only the known ones: a column in a field this walk did not expect is shown, not passed over.
    for (const field of Array.isArray(node) ? node : Object.values(node)) {
      const found = this.unbinnedSensitive(field as AstNode, scope, place);
      if (found) return found;
    }
    return undefined;
  }

  private unitsAtScope(scope: Scope): UnitReference[] {
    return scope.bindings.flatMap((binding) =>
      binding.relation.units.map((unit) => {
        const uniqueKey = binding.baseDataset === unit.dataset ? this.context.catalogue.get(unit.dataset)!.uniqueKey : undefined;
        return {
          dataset: unit.dataset,
          binding: binding.alias,
          expression: columnRef([binding.alias, unit.columnName]),
          onePerCell: false,
          ...(uniqueKey && uniqueKey.length > 0
            ? { rowKey: uniqueKey.map((column) => columnRef([binding.alias, column])) }
            : {}),
        };
      }),
    );
  }

  private onePerCell(unit: UnitReference, scope: Scope, groups: AstNode[]): boolean {
    if (scope.bindings.length !== 1 || scope.bindings[0]!.baseDataset !== unit.dataset) return false;
    const dataset = this.context.catalogue.get(unit.dataset)!;
    if (!dataset.uniqueKey || !dataset.uniqueKey.includes(dataset.privacyUnit)) return false;
    const grouped = new Set(
      groups
        .filter((group) => group.class === 'COLUMN_REF')
        .map((group) => String((group.column_names as string[]).at(-1)))
        .filter((name) => scope.bindings[0]!.relation.columns.some((column) => column.name === name && column.sources[0]?.dataset === unit.dataset && column.sources[0]?.column === name)),
    );
    return dataset.uniqueKey.every((column) => column === dataset.privacyUnit || grouped.has(column));
  }

  /**
   * The units whose contributions a summed figure's concentration rules weigh: every binding of every protected
   * dataset the argument reads — both sides of a self-join, since which binding a column came through is not
   * followed, and each dataset of an expression over several — or, for an argument over open data only, every
   * unit. Weighing only one would let a join spread one contributor's value evenly over the other side's
   * (`sum(b.energy)` over `a JOIN b`: each a-firm "contributes" the same dominant b-firm).
   */
  private unitsAddedUp(lineage: Lineage, units: UnitReference[]): UnitReference[] {
    const datasets = new Set(lineage.sources.filter((source) => !this.isOpen(source.dataset)).map((source) => source.dataset));
    const read = units.filter((unit) => datasets.has(unit.dataset));
    return read.length > 0 ? read : units;
  }

  private isOpen(datasetId: string) {
    const dataset = this.context.catalogue.get(datasetId)!;
    return dataset.openData && dataset.grade === 'L1';
  }

  /**
   * Resolves a column reference to the columns of datasets it comes from. A column of FROM is checked for where a
   * direct identifier may appear; an output column named in GROUP BY, ORDER BY or HAVING is not checked again (it
   * was as a select item, and its own rules — an aggregate in ORDER BY, say — are the caller's).
   */
  private resolveColumn(node: AstNode, scope: Scope, place: Place, flags: Parameters<Analyser['checkColumnUse']>[3]): Lineage {
    const names: string[] = node.column_names;
    if (names.some((name) => name.startsWith(reservedPrefix))) throw new QueryRejected('RESERVED_NAME', `names starting with ${reservedPrefix} are reserved`);
    if (names.length > 2) throw new QueryRejected('UNKNOWN_COLUMN', `${names.join('.')} names a schema or struct field; use alias.column${at(node)}`);
    const [qualifier, columnName] = names.length === 2 ? [names[0]!, names[1]!] : [undefined, names[0]!];
    const candidates = scope.bindings
      .filter((binding) => qualifier === undefined || binding.alias === qualifier)
      .flatMap((binding) => binding.relation.columns.filter((column) => column.name === columnName).map((column) => ({ binding, column })));
    if (candidates.length > 1) throw new QueryRejected('AMBIGUOUS_COLUMN', `${columnName} is ambiguous: qualify it with a table alias${at(node)}`);
    if (candidates.length === 1) {
      const { column } = candidates[0]!;
      for (const source of column.sources) this.use(source);
      const lineage = { sources: column.sources, aggregated: column.aggregated, aggregates: [], selective: Boolean(column.selective), capped: Boolean(column.capped), reshaped: Boolean(column.reshaped), banded: Boolean(column.banded) };
      this.checkColumnUse(node, lineage, place, flags);
      return lineage;
    }
    if (qualifier === undefined && scope.selectItems && (place === 'group' || place === 'order' || place === 'having')) {
      const item = scope.selectItems.find((candidate) => candidate.alias === columnName);
      if (item) return item.lineage;
    }
    if (qualifier !== undefined && !scope.bindings.some((binding) => binding.alias === qualifier)) {
      throw new QueryRejected('UNKNOWN_TABLE', `${qualifier} is not a table in FROM${at(node)}`);
    }
    if (qualifier === undefined && /^(current_date|current_time|current_timestamp|localtime|localtimestamp)$/i.test(columnName)) {
      throw new QueryRejected('FUNCTION_NOT_ALLOWED', `${columnName} is not supported: write the date as a constant (DATE '2026-01-01'), so that the output depends only on the SQL and the data version it ran on${at(node)}`);
    }
    throw new QueryRejected('UNKNOWN_COLUMN', `no column ${columnName}${qualifier ? ` in ${qualifier}` : ''}${at(node)}`);
  }

  private expression(
    node: AstNode,
    scope: Scope,
    place: Place,
    flags: { insideAggregate?: AggregateName | 'other'; joinKey?: boolean; outermost?: boolean; innerGroup?: boolean },
  ): Lineage {
    if (node === null || node === undefined) return emptyLineage();
    switch (node.class) {
      case 'CONSTANT':
        return emptyLineage();
      case 'COLUMN_REF':
        return this.resolveColumn(node, scope, place, flags);
      case 'PARAMETER':
        throw new QueryRejected('PARAMETER_NOT_ALLOWED', `parameters are not allowed${at(node)}`);
      case 'CAST': {
        const lineage = this.expression(node.child, scope, place, { ...flags, joinKey: false });
        // A cast to a whole or fixed-point number rounds: of a computed sensitive value (kwh / X), a step in
        // disguise, as round is. Of a column as it is, or of a condition, it rounds nothing of consequence.
        const type = String(node.cast_type?.id);
        const rounds = (wholeNumberTypes.has(type) || type === 'DECIMAL') && node.child?.class !== 'COLUMN_REF' && !isCondition(node.child) && readsSensitive(lineage);
        if (rounds) return { ...selectively(lineage), reshaped: true };
        // TRY_CAST gives NULL where the value does not convert ('2024-01-' || staff as a date, for 95 staff): a selection.
        return node.try_cast && lineage.sources.length > 0 ? selectively(lineage) : lineage;
      }
      case 'COLLATE':
        return this.expression(node.child, scope, place, flags);
      case 'COMPARISON': {
        const equality = node.type === 'COMPARE_EQUAL' || node.type === 'COMPARE_NOT_DISTINCT_FROM';
        const childFlags = { ...flags, joinKey: place === 'join' && equality && isColumnRef(node.left) && isColumnRef(node.right) };
        return selectively(merge(this.expression(node.left, scope, place, childFlags), this.expression(node.right, scope, place, childFlags)));
      }
      case 'CONJUNCTION':
        return selectively(merge(...(node.children as AstNode[]).map((child) => this.expression(child, scope, place, { ...flags, joinKey: false }))));
      case 'OPERATOR': {
        // grouping(a, b) says which keys a row of ROLLUP, CUBE or GROUPING SETS totals over (a bit per key): it
        // labels totals and reads no value (DuckDB checks that its arguments are group keys).
        if (node.type === 'GROUPING_FUNCTION') {
          if (place === 'where' || place === 'join' || place === 'group' || place === 'aggregate-filter' || flags.insideAggregate) {
            throw new QueryRejected('FUNCTION_NOT_ALLOWED', `grouping() labels the rows of an aggregation and cannot be used here${at(node)}`);
          }
          return emptyLineage();
        }
        const allowed = ['OPERATOR_NOT', 'OPERATOR_IS_NULL', 'OPERATOR_IS_NOT_NULL', 'COMPARE_IN', 'COMPARE_NOT_IN', 'OPERATOR_COALESCE', 'OPERATOR_NULLIF'];
        if (!allowed.includes(node.type)) throw new QueryRejected('FUNCTION_NOT_ALLOWED', `${String(node.type).toLowerCase()} is not allowed${at(node)}`);
        return selectively(merge(...(node.children as AstNode[]).map((child) => this.expression(child, scope, place, { ...flags, joinKey: false }))));
      }
      case 'BETWEEN':
        return selectively(merge(
          this.expression(node.input, scope, place, { ...flags, joinKey: false }),
          this.expression(node.lower, scope, place, { ...flags, joinKey: false }),
          this.expression(node.upper, scope, place, { ...flags, joinKey: false }),
        ));
      case 'CASE': {
        const conditions = (node.case_checks as AstNode[]).map((check) => this.expression(check.when_expr, scope, place, { ...flags, joinKey: false }));
        const results = [
          ...(node.case_checks as AstNode[]).map((check) => this.expression(check.then_expr, scope, place, { ...flags, joinKey: false })),
          this.expression(node.else_expr, scope, place, { ...flags, joinKey: false }),
        ];
        const lineage = selectively(merge(...conditions, ...results));
        // Chosen by a sensitive value and giving values on more than one branch: a cap. With one valued branch and
        // the others null or zero it is a selection, weighed by its left-out contributors (SMALL_COMPLEMENT).
        const valued = results.filter((result, index) => result.sources.length > 0 || !isNullOrZero(index < node.case_checks.length ? node.case_checks[index].then_expr : node.else_expr));
        return conditions.some(readsSensitive) && valued.length > 1 ? { ...lineage, capped: true } : lineage;
      }
      case 'FUNCTION':
        return this.functionCall(node, scope, place, flags);
      case 'WINDOW': {
        // Over open data alone, a window function's values are open data like its rows (art. 20): left in the SQL.
        // Over anything else it can output one person's values. (Over the outermost aggregation's output columns it
        // is computed from the released output, derived-columns.ts, and does not reach here.)
        if (!this.context.requested.every((dataset) => this.context.catalogue.has(dataset) && this.isOpen(dataset))) {
          throw new QueryRejected('WINDOW_FUNCTION', `window functions over rows are allowed on open data only: they can output one person's values (over an aggregation's output columns they are computed from the released output)${at(node)}`);
        }
        // Every expression the window holds is checked, its frame bounds, offset, default and FILTER included.
        const parts = [
          ...(node.children ?? []),
          ...(node.partitions ?? []),
          ...((node.orders ?? []) as AstNode[]).map((order) => order.expression),
          ...((node.arg_orders ?? []) as AstNode[]).map((order) => order.expression),
          node.filter_expr,
          node.start_expr,
          node.end_expr,
          node.offset_expr,
          node.default_expr,
        ].filter(Boolean) as AstNode[];
        return merge(emptyLineage(), ...parts.map((part) => this.expression(part, scope, place, { ...flags, joinKey: false })));
      }
      case 'SUBQUERY':
        throw new QueryRejected('SUBQUERY_EXPRESSION', `subqueries inside expressions are not supported${at(node)}: join a CTE instead; a share of the total is sum(x) / sum(sum(x)) OVER ()`);
      case 'STAR':
        // ORDER BY ALL reaches here as a star in the ORDER BY clause.
        if (place === 'order') throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `ORDER BY ALL is not supported; name the columns to sort by${at(node)}`);
        throw new QueryRejected('STAR_ON_PROTECTED_DATA', `* is only allowed in the select list over open data${at(node)}`);
      default:
        throw new QueryRejected('UNSUPPORTED_QUERY_SHAPE', `${String(node.class).toLowerCase()} expressions are not supported${at(node)}`);
    }
  }

  private functionCall(
    node: AstNode,
    scope: Scope,
    place: Place,
    flags: { insideAggregate?: AggregateName | 'other'; joinKey?: boolean; outermost?: boolean; innerGroup?: boolean },
  ): Lineage {
    const name = String(node.function_name).toLowerCase();
    // DuckDB parses EXTRACT(year FROM month) as main.date_part('year', month): the built-in functions' own schema is
    // allowed (the name must still be on the policy's list); any other schema or catalogue is not.
    if ((node.schema && node.schema !== 'main') || node.catalog) throw new QueryRejected('FUNCTION_NOT_ALLOWED', `${node.catalog ? `${node.catalog}.` : ''}${node.schema ? `${node.schema}.` : ''}${name} is not allowed${at(node)}`);
    if (node.export_state) throw new QueryRejected('FUNCTION_NOT_ALLOWED', `EXPORT_STATE is not allowed${at(node)}`);
    if (aggregateFunctions.has(name)) {
      if (place === 'where' || place === 'join' || place === 'group' || flags.insideAggregate) {
        throw new QueryRejected('AGGREGATE_NOT_ALLOWED', `${name} cannot be used here${at(node)}`);
      }
      // A median or quantile names one row's value, so thresholds cannot protect it; under differential privacy it is
      // read off a noisy histogram (src/privacy/dp-plan.ts) and is allowed wherever a mean is.
      const kind = aggregateKind(name, Boolean(node.distinct)) ?? (this.context.noisyRelease && dpQuantileFunctions.has(name) && !node.distinct ? 'avg' : undefined);
      const children = node.children as AstNode[];
      const argumentLineage = merge(...children.map((child) => this.expression(child, scope, place, { insideAggregate: kind ?? 'other' })));
      const filterLineage = node.filter ? this.expression(node.filter, scope, 'aggregate-filter', {}) : undefined;
      const orderLineage = merge(...((node.order_bys?.orders ?? []) as AstNode[]).map((order) => this.expression(order.expression, scope, 'order', { insideAggregate: kind ?? 'other' })));
      if (!kind && dpQuantileFunctions.has(name) && [...argumentLineage.sources, ...orderLineage.sources].some((source) => !this.isOpen(source.dataset))) {
        throw new QueryRejected(
          'AGGREGATE_NOT_ALLOWED',
          `${name} gives one contributor's value, which a threshold cannot protect: medians and quantiles of data that is not open are released only by differentially private jobs ("privacy": {"differentialPrivacy": true, …})${at(node)}`,
        );
      }
      // A quantile written WITHIN GROUP (ORDER BY x) takes its values from the ORDER BY: x is checked as its argument.
      const valued = dpQuantileFunctions.has(name) ? [...argumentLineage.sources, ...orderLineage.sources] : argumentLineage.sources;
      for (const source of valued) {
        if (this.isOpen(source.dataset)) continue;
        if (!kind || !this.context.policy.aggregatesAllowed(source.class, kind)) {
          throw new QueryRejected(
            'AGGREGATE_NOT_ALLOWED',
            `${name}${node.distinct ? '(DISTINCT …)' : ''} is not allowed on ${source.dataset}.${source.column} (${source.class.replaceAll('_', ' ')})${at(node)}`,
          );
        }
      }
      if (!kind && argumentLineage.sources.length === 0 && children.length > 0) {
        throw new QueryRejected('AGGREGATE_NOT_ALLOWED', `${name} is not an allowed aggregate${at(node)}`);
      }
      if (!kind && argumentLineage.sources.some((source) => !this.isOpen(source.dataset))) {
        throw new QueryRejected('AGGREGATE_NOT_ALLOWED', `${name} is not an allowed aggregate${at(node)}`);
      }
      // A sum of values capped by a sensitive value: against the plain total it gives what the largest (or
      // smallest) contributors hold beyond the cap — `sum(kwh) - sum(least(kwh, X))` — and every row keeps a part,
      // so no count of left-out rows sees it. Selections (FILTER, a case with one valued branch) and counts are
      // weighed by their left-out contributors and sketched instead.
      const summing = kind === 'sum' || kind === 'avg' || kind === 'stddev_samp' || kind === 'var_samp' || (kind !== undefined && pairedAggregates.has(kind));
      const protectedArgument = !argumentLineage.sources.every((source) => this.isOpen(source.dataset));
      if (summing && !isCountAggregate(node) && argumentLineage.capped && protectedArgument) {
        throw new QueryRejected(
          'SENSITIVE_CONDITION_IN_AGGREGATE',
          `${name} may not cap its values by a sensitive value (least or greatest of one, or a CASE on one with values on more than one branch): the plain total minus it would give what the largest contributors hold above the cap${at(node)}`,
        );
      }
      // The same for a sensitive value reshaped by any function of its size (`reshapes`). Not for a differentially
      // private job, whose noise covers any per-row function of the clamped values, nor for a model's statistics
      // query, the platform's own, whose products of features are its sufficient statistics.
      if (summing && !isCountAggregate(node) && argumentLineage.reshaped && protectedArgument && !this.context.modelStatistics && !this.context.noisyRelease) {
        throw new QueryRejected(
          'SENSITIVE_CONDITION_IN_AGGREGATE',
          `${name} may not take a sensitive value reshaped by a function of its size (abs, round, floor, %, a power, exp, a cast to a whole number, a product or ratio of two sensitive values): such a function can cap it, and the plain total minus it would give what the largest contributors hold above a level. Sum the value as it is or scaled by constants, select rows with FILTER (WHERE …), and apply functions to the aggregate, as round(sum(kwh))${at(node)}`,
        );
      }
      // `sum(x) FILTER (WHERE c)` adds up only the rows where c holds: its contributions, which the dominance and
      // p% rules weigh, are those of CASE WHEN c THEN x END — not of x over the whole cell, which would let a
      // filter that isolates one person pass a large cell's checks with that person's value.
      const withFilter = (child: AstNode | undefined) => (child && node.filter ? filteredArgument(node.filter, child) : child);
      const argument = withFilter(children[0]);
      const second = kind && pairedAggregates.has(kind) ? withFilter(children[1]) : undefined;
      // What analysing the folded CASE WHEN filter THEN argument END gives (one valued branch: a selection).
      const folded = filterLineage ? selectively(merge(filterLineage, argumentLineage)) : argumentLineage;
      return {
        sources: argumentLineage.sources,
        aggregated: true,
        aggregates: [{ kind: kind ?? 'count', node, ...(argument ? { argument } : {}), ...(second ? { second } : {}), lineage: folded }],
        selective: Boolean(folded.selective),
      };
    }
    const scalarAllowed = node.is_operator ? allowedOperators.has(name) : this.context.policy.scalarFunctionSet.has(name);
    if (!scalarAllowed) throw new QueryRejected('FUNCTION_NOT_ALLOWED', `function ${name} is not allowed${at(node)}`);
    if (node.distinct || node.filter || (node.order_bys?.orders ?? []).length > 0) {
      throw new QueryRejected('FUNCTION_NOT_ALLOWED', `${name} takes no DISTINCT, FILTER or ORDER BY${at(node)}`);
    }
    const parts = (node.children as AstNode[]).map((child) => this.expression(child, scope, place, { ...flags, joinKey: false }));
    const lineage = merge(...parts);
    if (cappingFunctions.has(name) && readsSensitive(lineage)) return { ...selectively(lineage), capped: true };
    if (reshapes(name, Boolean(node.is_operator), node.children as AstNode[], parts)) return { ...selectively(lineage), reshaped: true };
    // Two values that vary from row to row, combined: a product or quotient weighs each row by the other's values,
    // which arithmetic can make 0 for some rows and 1 for others (a polynomial through chosen values), and any
    // combination is NULL where either is (kwh + 0 * length(industry_code) adds up only the rows that have a code).
    // Any function but + − × ÷ of a varying value can be 0 or NULL for some values and not others (1 + 0 *
    // length(industry_code) counts the rows with a code, as count(industry_code) does). Each is a selection in
    // disguise. A figure an inner aggregation computed varies too, even one that reads no column (count(*) per
    // account); a value scaled by a constant is the value.
    const varies = (part: Lineage | undefined) => part !== undefined && (part.sources.length > 0 || part.aggregated);
    const arithmetic = Boolean(node.is_operator) && ['+', '-', '*', '/'].includes(name);
    const selects = parts.filter(varies).length > 1 || (arithmetic ? name === '/' && varies(parts[1]) : parts.some(varies));
    return selects ? selectively(lineage) : lineage;
  }

  /** Where a direct identifier may appear: as a join key, as the counted privacy unit, or carried inside a derived relation. */
  private checkColumnUse(
    node: AstNode,
    lineage: Lineage,
    place: Place,
    flags: { insideAggregate?: AggregateName | 'other'; joinKey?: boolean; outermost?: boolean; innerGroup?: boolean },
  ) {
    for (const source of lineage.sources) {
      if (source.class !== 'direct_identifier' || this.isOpen(source.dataset)) continue;
      const dataset = this.context.catalogue.get(source.dataset)!;
      const isUnit = dataset.privacyUnit === source.column;
      const allowed =
        (place === 'join' && flags.joinKey) ||
        (flags.insideAggregate === 'count_distinct' && isUnit) ||
        (place === 'select' && !flags.outermost && !flags.insideAggregate) ||
        (place === 'group' && flags.innerGroup && isUnit);
      if (!allowed) {
        throw new QueryRejected(
          'DIRECT_IDENTIFIER_USE',
          `${source.dataset}.${source.column} is a direct identifier: it may only be a join key (a = b)${isUnit ? ` or counted as count(DISTINCT ${source.column})` : `; the dataset's privacy unit may be counted as count(DISTINCT ${dataset.privacyUnit})`}${at(node)}`,
        );
      }
    }
  }
}

/** Whether a GROUP BY expression is the plain privacy-unit column of a binding (qualified or not). */
function refersToUnit(group: AstNode, unit: UnitReference, scope: Scope): boolean {
  if (group.class !== 'COLUMN_REF') return false;
  const names: string[] = group.column_names;
  const unitColumn = String(unit.expression.column_names[1]);
  if (names.length === 2) return names[0] === unit.binding && names[1] === unitColumn;
  const owners = scope.bindings.filter((binding) => binding.relation.columns.some((column) => column.name === names[0]));
  return names[0] === unitColumn && owners.length === 1 && owners[0]!.alias === unit.binding;
}

function isColumnRef(node: AstNode | undefined) {
  return node?.class === 'COLUMN_REF' || (node?.class === 'CAST' && node.child?.class === 'COLUMN_REF');
}

function renamed(relation: Relation, aliases: string[] | undefined): Relation {
  if (!aliases || aliases.length === 0) return relation;
  return { ...relation, columns: relation.columns.map((column, index) => ({ ...column, name: aliases[index] ?? column.name })) };
}

function mergeUnits(left: Relation['units'], right: Relation['units']): Relation['units'] {
  const all = new Map<string, Relation['units'][number]>();
  for (const unit of [...left, ...right]) all.set(unit.columnName, unit);
  return [...all.values()].sort((a, b) => a.columnName.localeCompare(b.columnName));
}

