import type { CatalogueDataset, QueryAnalysis } from '../analysis/analyse-query.js';
import type { AstNode, SqlParser } from '../analysis/sql-parser.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { AppError } from '../errors/app-error.js';

/**
 * Differentially private aggregates: COUNT, SUM and AVG over one protected (non-open) dataset, optionally joined
 * with open datasets, grouped by columns with a public domain in the catalogue (every combination is output, so no
 * key held by one person can appear) or by any other column through DP partition selection (a key appears only
 * if a noisy count of its privacy units clears a threshold set by δ).
 *
 * Contributions are bounded **after the joins**: inside DuckDB the joined rows of each privacy unit of the
 * protected dataset are cut to `maxRowsPerUnit`, chosen at random, and summed values are clamped to the declared
 * bounds (or an operator's narrower ones). Open data needs no protection and is the same in neighbouring inputs,
 * so a join with it — of any multiplicity — changes nothing in the sensitivity once the rows are bounded per unit.
 * Protected datasets may be joined with each other only on their privacy units (ON a.unit = b.unit): every joined
 * row then belongs to one unit value in all of them, the one cap bounds it, and the job spends its ε from each of
 * their budgets. Any other join of two protected datasets would need each one's units bounded separately, which
 * one row cap cannot do soundly (removing a unit of one shifts which rows of the other are kept); it is refused.
 */
export type DpMechanism = 'laplace' | 'gaussian';
export type DpAggregate = { outputIndex: number; kind: 'count' | 'sum' | 'avg'; sumIndex?: number; column?: string; bounds?: { min: number; max: number } };
export type DpPlan = {
  kind: 'dp_aggregate';
  /** The protected dataset whose privacy unit is bounded. */
  dataset: string;
  /** Every protected dataset the job reads: each one's budget pays the job's ε and δ. */
  budgetDatasets?: string[];
  groupColumns: Array<{ name: string; outputIndex: number | null; domain: Array<string | number> | null }>;
  aggregates: DpAggregate[];
  /** Summed columns, in the order of their `__pds_s_<i>` figures. */
  sums: Array<{ column: string; bounds: { min: number; max: number } }>;
  outputColumns: Array<{ name: string; role: 'group_key' | 'dp_count' | 'dp_sum' | 'dp_mean' }>;
  maxRowsPerUnit: number;
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
export function dpSummary(plan: Pick<DpPlan, 'epsilonMicro' | 'deltaPico' | 'mechanism'>) {
  return { epsilon: plan.epsilonMicro / 1e6, delta: plan.deltaPico / 1e12, mechanism: plan.mechanism };
}

export type DpRequest = { epsilonMicro: number; deltaPico: number; mechanism: DpMechanism; bounds?: Record<string, { min: number; max: number }> };

const ref = (binding: string, column: string): AstNode => ({ class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: [binding, column] });
const fn = (name: string, children: AstNode[]): AstNode => ({
  class: 'FUNCTION', type: 'FUNCTION', alias: '', query_location: 0, function_name: name, schema: '', children, filter: null,
  order_bys: { type: 'ORDER_MODIFIER', orders: [] }, distinct: false, is_operator: false, export_state: false, catalog: '',
});
// A bound as CAST('…' AS DOUBLE): DuckDB's AST reads a bare JSON number as an integer.
const constant = (value: number): AstNode => ({
  class: 'CAST',
  type: 'OPERATOR_CAST',
  alias: '',
  query_location: 0,
  child: { class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'VARCHAR', type_info: null }, is_null: false, value: String(value) } },
  cast_type: { id: 'DOUBLE', type_info: null },
  try_cast: false,
});

function shapeError(detail: string): AppError {
  return new AppError('DP_QUERY_SHAPE', `differentially private jobs support COUNT, SUM and AVG over one protected dataset (joined with open data if needed), grouped by columns: ${detail}`);
}

/** The tables of the FROM clause: base tables joined by inner or left joins, nothing else (yet). */
function bindingsOf(from: AstNode | null | undefined, bindings = new Map<string, string>()): Map<string, string> {
  if (!from) throw shapeError('the query reads no dataset');
  if (from.type === 'BASE_TABLE') {
    const name = String(from.alias || from.table_name);
    if (bindings.has(name)) throw shapeError(`${name} is used twice`);
    bindings.set(name, String(from.table_name));
    return bindings;
  }
  if (from.type === 'JOIN' && (from.join_type === 'INNER' || from.join_type === 'LEFT') && from.ref_type === 'REGULAR') {
    bindingsOf(from.left, bindings);
    bindingsOf(from.right, bindings);
    return bindings;
  }
  throw shapeError('only tables joined by INNER or LEFT joins; no subqueries, set operations or other joins (yet)');
}

export async function buildDpPlan(
  analysis: QueryAnalysis,
  catalogue: Map<string, CatalogueDataset>,
  columnSpecs: Map<string, ColumnSpec[]>,
  parser: SqlParser,
  options: { maxRowsPerUnit: number } & DpRequest,
): Promise<DpPlan> {
  const node = analysis.node;
  if (analysis.kind !== 'aggregate') throw shapeError('the query must aggregate');
  if (node.having || node.modifiers.length > 0) throw shapeError('no HAVING, ORDER BY or LIMIT');
  const bindings = bindingsOf(node.from_table);
  const protectedBindings = [...bindings].filter(([, dataset]) => !catalogue.get(dataset)?.openData);
  if (protectedBindings.length === 0) throw shapeError('at least one dataset must be protected (open data needs no noise)');
  const [factBinding, datasetId] = protectedBindings[0]!;
  const dataset = catalogue.get(datasetId)!;

  /** A column reference resolved to its table binding, dataset and registered spec. */
  const resolve = (expression: AstNode): { binding: string; dataset: string; spec: ColumnSpec } | undefined => {
    if (expression.class !== 'COLUMN_REF') return undefined;
    const names = expression.column_names as string[];
    const column = String(names.at(-1));
    const candidates = names.length >= 2 ? [[String(names.at(-2)), bindings.get(String(names.at(-2)))] as const] : [...bindings];
    const found = candidates.flatMap(([binding, id]) => {
      const spec = id ? columnSpecs.get(id)?.find((entry) => entry.name === column) : undefined;
      return spec && id ? [{ binding, dataset: id, spec }] : [];
    });
    if (found.length > 1) throw shapeError(`${column} is ambiguous; qualify it with its table`);
    return found[0];
  };

  if (protectedBindings.length > 1) requireJoinsOnUnits(node.from_table, protectedBindings.map(([binding]) => binding), resolve, (binding) => catalogue.get(bindings.get(binding)!)!.privacyUnit);

  const groupRefs = (analysis.groupExpressions as AstNode[]).map((expression) => {
    const column = resolve(expression);
    if (!column) throw shapeError('group keys must be columns');
    return column;
  });
  const groupColumns: DpPlan['groupColumns'] = groupRefs.map((column) => ({ name: column.spec.name, outputIndex: null, domain: column.spec.publicDomain ?? null }));
  const partitionSelection = groupColumns.some((group) => group.domain === null);
  if (partitionSelection && options.deltaPico === 0) {
    throw shapeError(`group key ${groupColumns.find((group) => group.domain === null)!.name} has no public domain: partition selection needs a δ > 0`);
  }

  const sums: DpPlan['sums'] = [];
  const sumRefs: Array<{ binding: string; column: string }> = [];
  const aggregates: DpAggregate[] = [];
  const outputColumns: DpPlan['outputColumns'] = [];
  const usedBounds = new Set<string>();
  (node.select_list as AstNode[]).forEach((item, outputIndex) => {
    const resolved = resolve(item);
    const name = String(item.alias || resolved?.spec.name || `${String(item.function_name ?? 'column')}_${outputIndex + 1}`);
    const groupIndex = resolved ? groupRefs.findIndex((group) => group.binding === resolved.binding && group.spec.name === resolved.spec.name) : -1;
    if (groupIndex >= 0) {
      groupColumns[groupIndex]!.outputIndex = outputIndex;
      outputColumns.push({ name, role: 'group_key' });
      return;
    }
    if (item.class !== 'FUNCTION' || item.distinct || item.filter) throw shapeError(`output ${name} is not COUNT, SUM or AVG`);
    const functionName = String(item.function_name).toLowerCase();
    if (functionName === 'count_star' || (functionName === 'count' && item.children.length === 1)) {
      aggregates.push({ outputIndex, kind: 'count' });
      outputColumns.push({ name, role: 'dp_count' });
      return;
    }
    if ((functionName === 'sum' || functionName === 'avg' || functionName === 'mean') && item.children.length === 1) {
      const argument = resolve(item.children[0]);
      if (!argument?.spec.bounds) throw shapeError(`${functionName}(${argument?.spec.name ?? 'expression'}) needs a column with declared bounds`);
      const declared = argument.spec.bounds;
      const narrowed = options.bounds?.[argument.spec.name];
      if (narrowed) {
        // An operator may narrow the clamp (less noise, more clipping), never widen it.
        if (narrowed.min < declared.min || narrowed.max > declared.max || narrowed.min > narrowed.max) {
          throw new AppError('VALIDATION_FAILED', `bounds for ${argument.spec.name} may only narrow the declared [${declared.min}, ${declared.max}]`, [{ path: `privacy.bounds.${argument.spec.name}`, problem: 'widens the declared bounds' }]);
        }
        usedBounds.add(argument.spec.name);
      }
      let sumIndex = sumRefs.findIndex((entry) => entry.binding === argument.binding && entry.column === argument.spec.name);
      if (sumIndex < 0) {
        sumIndex = sumRefs.push({ binding: argument.binding, column: argument.spec.name }) - 1;
        sums.push({ column: argument.spec.name, bounds: narrowed ?? declared });
      }
      const kind = functionName === 'sum' ? 'sum' : 'avg';
      aggregates.push({ outputIndex, kind, sumIndex, column: argument.spec.name, bounds: sums[sumIndex]!.bounds });
      outputColumns.push({ name, role: kind === 'sum' ? 'dp_sum' : 'dp_mean' });
      return;
    }
    throw shapeError(`output ${name} is not COUNT, SUM or AVG`);
  });
  if (aggregates.length === 0) throw shapeError('no aggregate');
  for (const column of Object.keys(options.bounds ?? {})) {
    if (!usedBounds.has(column)) throw new AppError('VALIDATION_FAILED', `bounds were given for ${column}, which the query does not sum`, [{ path: `privacy.bounds.${column}`, problem: 'not summed' }]);
  }
  if (!partitionSelection) {
    const cells = groupColumns.reduce((product, group) => product * group.domain!.length, 1);
    if (cells > 100_000) throw shapeError('the product of the group domains exceeds 100,000 cells');
  }

  // Inside DuckDB: the privacy unit, the group keys and the clamped values of each summed column, after the joins
  // and the WHERE clause of the operator's query.
  const inner = structuredClone(node);
  inner.select_list = [
    { ...ref(factBinding, dataset.privacyUnit), alias: '__pds_u' },
    ...groupRefs.map((group, index) => ({ ...ref(group.binding, group.spec.name), alias: `__pds_g_${index}` })),
    ...sumRefs.map((entry, index) => {
      const bounds = sums[index]!.bounds;
      return { ...fn('greatest', [fn('least', [ref(entry.binding, entry.column), constant(bounds.max)]), constant(bounds.min)]), alias: `__pds_x_${index}` };
    }),
  ];
  inner.group_expressions = [];
  inner.group_sets = [];
  inner.having = null;
  inner.modifiers = [];
  const keys = groupColumns.map((_, index) => `__pds_g_${index}`);
  const select = [
    ...keys,
    'count(*) AS __pds_n',
    ...(partitionSelection ? ['count(DISTINCT __pds_u) AS __pds_units'] : []),
    ...sums.map((_, index) => `sum(__pds_x_${index}) AS __pds_s_${index}`),
  ].join(', ');
  const sql =
    // Rows without a unit (open rows an outer join kept unmatched) are dropped: their presence would depend on the
    // absence of a protected row.
    `SELECT ${select} FROM (SELECT *, row_number() OVER (PARTITION BY __pds_u ORDER BY random()) AS __pds_rank FROM (${await parser.toSql(inner)}) AS __pds_rows WHERE __pds_u IS NOT NULL) AS __pds_bounded ` +
    `WHERE __pds_rank <= ${options.maxRowsPerUnit}${keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : ''}`;
  return {
    kind: 'dp_aggregate',
    dataset: datasetId,
    budgetDatasets: [...new Set(protectedBindings.map(([, id]) => id))],
    groupColumns,
    aggregates,
    sums,
    outputColumns,
    maxRowsPerUnit: options.maxRowsPerUnit,
    partitionSelection,
    mechanism: options.mechanism,
    sql,
    epsilonMicro: options.epsilonMicro,
    deltaPico: options.deltaPico,
  };
}

/**
 * Protected tables must be linked to each other by equalities of their privacy units in ON clauses (directly or
 * through one another): then a joined row carries the same unit value from each, and bounding that one value
 * bounds every protected dataset's contribution.
 */
function requireJoinsOnUnits(
  from: AstNode,
  protectedBindings: string[],
  resolve: (expression: AstNode) => { binding: string; spec: ColumnSpec } | undefined,
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
      if (left.spec.name === unitOf(left.binding) && right.spec.name === unitOf(right.binding)) parent.set(root(left.binding), root(right.binding));
    }
  };
  visit(from);
  const unlinked = protectedBindings.filter((binding) => root(binding) !== root(protectedBindings[0]!));
  if (unlinked.length > 0) {
    throw shapeError(`protected datasets are joined only on their privacy units (ON a.unit = b.unit); ${unlinked.join(', ')} is not (one row cap cannot bound two different units)`);
  }
}
