import type { CatalogueDataset, QueryAnalysis } from '../analysis/analyse-query.js';
import type { AstNode, SqlParser } from '../analysis/sql-parser.js';
import type { ColumnSpec } from '../catalog/columns.js';
import { AppError } from '../errors/app-error.js';

/**
 * Differentially private aggregates (the shape this service supports today): one dataset, group keys that are
 * columns with a public domain in the catalogue (every combination is output, empty or not, so no key held by
 * one person can appear), and COUNT, SUM and AVG of columns with declared bounds. Each privacy unit contributes
 * at most `maxRowsPerUnit` rows (chosen at random inside DuckDB), values are clamped to the bounds, and the
 * per-cell figures get discrete Laplace noise after the sandbox returns them.
 */
export type DpAggregate = { outputIndex: number; kind: 'count' | 'sum' | 'avg'; column?: string; bounds?: { min: number; max: number } };
export type DpPlan = {
  kind: 'dp_aggregate';
  dataset: string;
  groupColumns: Array<{ name: string; outputIndex: number | null; domain: Array<string | number> }>;
  aggregates: DpAggregate[];
  outputColumns: Array<{ name: string; role: 'group_key' | 'dp_count' | 'dp_sum' | 'dp_mean' }>;
  maxRowsPerUnit: number;
  sql: string;
  epsilonMicro: number;
  chargeId?: string;
};

const ref = (column: string): AstNode => ({ class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: [column] });
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
  return new AppError('DP_QUERY_SHAPE', `differentially private jobs support COUNT, SUM and AVG over one dataset, grouped by columns with a public domain: ${detail}`);
}

export async function buildDpPlan(
  analysis: QueryAnalysis,
  catalogue: Map<string, CatalogueDataset>,
  columnSpecs: ColumnSpec[],
  parser: SqlParser,
  options: { maxRowsPerUnit: number; epsilonMicro: number },
): Promise<DpPlan> {
  const node = analysis.node;
  if (analysis.kind !== 'aggregate') throw shapeError('the query must aggregate');
  if (node.from_table?.type !== 'BASE_TABLE' || analysis.datasets.length !== 1) throw shapeError('one dataset, no joins or subqueries (yet)');
  if (node.having || node.modifiers.length > 0) throw shapeError('no HAVING, ORDER BY or LIMIT (every cell of the domain is output, in domain order)');
  const datasetId = analysis.datasets[0]!;
  const dataset = catalogue.get(datasetId)!;
  const spec = (name: string) => columnSpecs.find((column) => column.name === name);
  const columnOf = (expression: AstNode): string | undefined =>
    expression.class === 'COLUMN_REF' ? String((expression.column_names as string[]).at(-1)) : undefined;

  const groupColumns = (analysis.groupExpressions as AstNode[]).map((expression) => {
    const name = columnOf(expression);
    const domain = name ? spec(name)?.publicDomain : undefined;
    if (!name || !domain) throw shapeError(`group key ${name ?? 'expression'} has no public domain in the catalogue`);
    return { name, outputIndex: null as number | null, domain };
  });
  const aggregates: DpAggregate[] = [];
  const outputColumns: DpPlan['outputColumns'] = [];
  (node.select_list as AstNode[]).forEach((item, outputIndex) => {
    const name = String(item.alias || columnOf(item) || `${String(item.function_name ?? 'column')}_${outputIndex + 1}`);
    const column = columnOf(item);
    const group = groupColumns.find((candidate) => candidate.name === column);
    if (group) {
      group.outputIndex = outputIndex;
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
      const argument = columnOf(item.children[0]);
      const bounds = argument ? spec(argument)?.bounds : undefined;
      if (!argument || !bounds) throw shapeError(`${functionName}(${argument ?? 'expression'}) needs a column with declared bounds`);
      const kind = functionName === 'sum' ? 'sum' : 'avg';
      aggregates.push({ outputIndex, kind, column: argument, bounds });
      outputColumns.push({ name, role: kind === 'sum' ? 'dp_sum' : 'dp_mean' });
      return;
    }
    throw shapeError(`output ${name} is not COUNT, SUM or AVG`);
  });
  if (aggregates.length === 0) throw shapeError('no aggregate');
  const cells = groupColumns.reduce((product, group) => product * group.domain.length, 1);
  if (cells > 100_000) throw shapeError('the product of the group domains exceeds 100,000 cells');

  // Inside DuckDB: the privacy unit, the group keys and the clamped values of each summed column.
  const inner = structuredClone(node);
  const summed = [...new Set(aggregates.filter((aggregate) => aggregate.column).map((aggregate) => aggregate.column!))];
  inner.select_list = [
    { ...ref(dataset.privacyUnit), alias: '__pds_u' },
    ...groupColumns.map((group, index) => ({ ...ref(group.name), alias: `__pds_g_${index}` })),
    ...summed.map((column) => {
      const bounds = spec(column)!.bounds!;
      return { ...fn('greatest', [fn('least', [ref(column), constant(bounds.max)]), constant(bounds.min)]), alias: `__pds_x_${column}` };
    }),
  ];
  inner.group_expressions = [];
  inner.group_sets = [];
  inner.having = null;
  inner.modifiers = [];
  const keys = groupColumns.map((_, index) => `__pds_g_${index}`);
  const select = [...keys, 'count(*) AS __pds_n', ...summed.map((column) => `sum(__pds_x_${column}) AS __pds_s_${column}`)].join(', ');
  const sql =
    `SELECT ${select} FROM (SELECT *, row_number() OVER (PARTITION BY __pds_u ORDER BY random()) AS __pds_rank FROM (${await parser.toSql(inner)}) AS __pds_rows) AS __pds_bounded ` +
    `WHERE __pds_rank <= ${options.maxRowsPerUnit}${keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : ''}`;
  return { kind: 'dp_aggregate', dataset: datasetId, groupColumns, aggregates, outputColumns, maxRowsPerUnit: options.maxRowsPerUnit, sql, epsilonMicro: options.epsilonMicro };
}
