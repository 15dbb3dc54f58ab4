import type { GradePolicy } from '../policy/disclosure-policy.js';
import type { QueryAnalysis } from './analyse-query.js';
import type { AstNode, SqlParser } from './sql-parser.js';

/**
 * The SQL a sandbox runs for one job: the operator's query (with its group keys appended as hidden columns)
 * and the hidden disclosure queries over the same FROM, WHERE and GROUP BY — distinct contributors per cell for
 * each protected dataset, and per measure the per-contributor totals' sum and largest values (for the
 * dominance and p% rules). Everything is computed inside DuckDB; only per-cell figures come back.
 */
export type ExecutionPlan = {
  kind: QueryAnalysis['kind'];
  mainSql: string;
  groupKeyCount: number;
  visibleColumns: QueryAnalysis['outputColumns'];
  contributorsSql: string | null;
  contributorDatasets: string[];
  measureQueries: Array<{ outputIndex: number; sql: string }>;
  /** Fetch at most this many rows; one more than the policy's maximum, so "too many" can be detected. */
  rowLimit: number;
};

export const hiddenGroupColumn = (index: number) => `__pds_g_${index}`;
const alias = (node: AstNode, name: string): AstNode => ({ ...structuredClone(node), alias: name });
const columnRef = (name: string): AstNode => ({ class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: 0, column_names: [name] });
const call = (name: string, children: AstNode[], distinct = false): AstNode => ({
  class: 'FUNCTION',
  type: 'FUNCTION',
  alias: '',
  query_location: 0,
  function_name: name,
  schema: '',
  children,
  filter: null,
  order_bys: { type: 'ORDER_MODIFIER', orders: [] },
  distinct,
  is_operator: false,
  export_state: false,
  catalog: '',
});

export async function buildExecutionPlan(analysis: QueryAnalysis, parser: SqlParser, grade: GradePolicy): Promise<ExecutionPlan> {
  const rowLimit = grade.maxOutputRows + 1;
  if (analysis.kind === 'row_level') {
    return {
      kind: 'row_level',
      mainSql: await parser.toSql(analysis.node),
      groupKeyCount: 0,
      visibleColumns: analysis.outputColumns,
      contributorsSql: null,
      contributorDatasets: [],
      measureQueries: [],
      rowLimit,
    };
  }
  const groups = analysis.groupExpressions;
  const groupKeyCount = groups.length;
  const groupAliases = groups.map((group, index) => alias(group, hiddenGroupColumn(index)));

  const main = structuredClone(analysis.node);
  main.select_list = [...main.select_list, ...groupAliases];
  const mainSql = await parser.toSql(main);

  const cellQuery = (selectList: AstNode[], extraGroups: AstNode[] = []): AstNode => {
    const node = structuredClone(analysis.node);
    node.select_list = selectList;
    node.group_expressions = [...groups.map((group) => structuredClone(group)), ...extraGroups];
    node.group_sets = node.group_expressions.length > 0 ? [node.group_expressions.map((_: unknown, index: number) => index)] : [];
    node.having = null;
    node.modifiers = [];
    return node;
  };

  let contributorsSql: string | null = null;
  if (analysis.units.length > 0) {
    contributorsSql = await parser.toSql(
      cellQuery([
        ...groupAliases,
        ...analysis.units.map((unit, index) => alias(call('count', [structuredClone(unit.expression)], true), `__pds_c_${index}`)),
      ]),
    );
  }

  const measureQueries: ExecutionPlan['measureQueries'] = [];
  const topN = Math.max(2, grade.dominance?.n ?? 2);
  for (const measure of analysis.measures) {
    const inner = await parser.toSql(
      cellQuery(
        [...groupAliases, alias(measure.unit.expression, '__pds_u'), alias(call('sum', [structuredClone(measure.argument)]), '__pds_v')],
        [structuredClone(measure.unit.expression)],
      ),
    );
    const keys = groups.map((_, index) => hiddenGroupColumn(index));
    const select = [...keys, 'sum(abs(__pds_v)) AS __pds_total', `max(abs(__pds_v), ${topN}) AS __pds_top`].join(', ');
    measureQueries.push({
      outputIndex: measure.outputIndex,
      sql: `SELECT ${select} FROM (${inner}) AS __pds_m${keys.length > 0 ? ` GROUP BY ${keys.join(', ')}` : ''}`,
    });
  }
  void columnRef;

  return {
    kind: 'aggregate',
    mainSql,
    groupKeyCount,
    visibleColumns: analysis.outputColumns,
    contributorsSql,
    contributorDatasets: analysis.units.map((unit) => unit.dataset),
    measureQueries,
    rowLimit,
  };
}
