import type { AstNode } from './sql-parser.js';

/**
 * Builders of parsed-SQL nodes in the shape DuckDB's `json_serialize_sql` gives and `json_deserialize_sql` reads.
 * The plans that rewrite an analysed query (hidden figures, sketches, DP bounds) build with these and nothing else,
 * so that an operator's text is never spliced into SQL.
 */
export const alias = (node: AstNode, name: string): AstNode => ({ ...structuredClone(node), alias: name });

export const call = (name: string, children: AstNode[], distinct = false): AstNode => ({
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

/** An arithmetic operator (`+`, `-`, `*`, `/`): a function DuckDB prints infix. */
export const operator = (name: string, children: AstNode[]): AstNode => ({ ...call(name, children), is_operator: true });

/** A column reference (`alias.column`, or a bare name), placed where `location` says. */
export const columnRef = (names: string[], location = 0): AstNode => ({ class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: location, column_names: names });

/** A comparison of two values: `COMPARE_EQUAL`, `COMPARE_NOTEQUAL`, … as DuckDB names them. */
export const comparison = (type: string, left: AstNode, right: AstNode, location = 0): AstNode => ({ class: 'COMPARISON', type, alias: '', query_location: location, left, right });

/** Every condition holds (AND). */
export const allOf = (children: AstNode[], location = 0): AstNode => ({ class: 'CONJUNCTION', type: 'CONJUNCTION_AND', alias: '', query_location: location, children });

export const integer = (value: number): AstNode => ({ class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'INTEGER', type_info: null }, is_null: false, value } });

export const text = (value: string): AstNode => ({ class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: '', query_location: 0, value: { type: { id: 'VARCHAR', type_info: null }, is_null: false, value } });

export const nullValue = (name = ''): AstNode => ({ class: 'CONSTANT', type: 'VALUE_CONSTANT', alias: name, query_location: 0, value: { type: { id: 'NULL', type_info: null }, is_null: true } });

const castToDouble = (child: AstNode, tryCast: boolean): AstNode => ({ class: 'CAST', type: 'OPERATOR_CAST', alias: '', query_location: 0, child: structuredClone(child), cast_type: { id: 'DOUBLE', type_info: null }, try_cast: tryCast });
/** CAST(child AS DOUBLE): fails on a value that is not a number. */
export const toDouble = (child: AstNode): AstNode => castToDouble(child, false);
/** TRY_CAST(child AS DOUBLE): null where the value is not a number. */
export const tryToDouble = (child: AstNode): AstNode => castToDouble(child, true);
/** A number as CAST('…' AS DOUBLE): DuckDB's AST reads a bare JSON number as an integer. */
export const doubleConstant = (value: number): AstNode => toDouble(text(String(value)));

export const isNotNull = (expression: AstNode): AstNode => ({ class: 'OPERATOR', type: 'OPERATOR_IS_NOT_NULL', alias: '', query_location: 0, children: [structuredClone(expression)] });

/** CASE WHEN condition THEN value ELSE otherwise END (NULL unless given), placed where `location` says. */
export const caseWhen = (condition: AstNode, value: AstNode, otherwise: AstNode = nullValue(), location = 0): AstNode => ({
  class: 'CASE',
  type: 'CASE_EXPR',
  alias: '',
  query_location: location,
  case_checks: [{ when_expr: structuredClone(condition), then_expr: structuredClone(value) }],
  else_expr: otherwise,
});

/**
 * A numeric constant's value as DuckDB's parser gives it (a DECIMAL as digits and a scale), or as `doubleConstant`
 * writes one (CAST('0.1' AS DOUBLE)), or undefined.
 */
export function numericConstant(node: AstNode | undefined): number | undefined {
  if (node?.class === 'CAST' && node.cast_type?.id === 'DOUBLE' && node.child?.class === 'CONSTANT' && node.child.value?.type?.id === 'VARCHAR') {
    const value = Number(node.child.value.value);
    return Number.isFinite(value) ? value : undefined;
  }
  if (!node || node.class !== 'CONSTANT' || node.value?.is_null) return undefined;
  const { id, type_info: info } = node.value.type as { id: string; type_info: { scale?: number } | null };
  if (id === 'DECIMAL') return Number(node.value.value) / 10 ** (info?.scale ?? 0);
  return ['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'FLOAT', 'DOUBLE'].includes(id) ? Number(node.value.value) : undefined;
}

/** Structural equality of two expressions, ignoring positions and aliases. */
export function sameExpression(a: AstNode, b: AstNode): boolean {
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value as AstNode)
          .filter(([key]) => key !== 'query_location' && key !== 'alias')
          .map(([key, entry]) => [key, strip(entry)]),
      );
    }
    return value;
  };
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

/** DuckDB's whole-number types: a cast to one rounds. */
export const wholeNumberTypes: ReadonlySet<string> = new Set(['TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', 'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT']);

/** The name the analyser gives an unnamed select item (a column its own name, a call its function and place). */
export function defaultItemName(node: AstNode, index: number): string {
  if (node.class === 'COLUMN_REF') return String(node.column_names.at(-1));
  if (node.class === 'FUNCTION' || node.class === 'WINDOW') return `${String(node.function_name)}_${index + 1}`;
  return `column_${index + 1}`;
}

/**
 * Visits every node of a parsed statement in place: `enter` before a node's children, `leave` after them (so a
 * rewrite in `leave` sees its children already rewritten).
 */
export function visitNodes(value: unknown, enter: (node: AstNode) => void, leave?: (node: AstNode) => void): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((entry) => visitNodes(entry, enter, leave));
    return;
  }
  const node = value as AstNode;
  enter(node);
  Object.values(node).forEach((entry) => visitNodes(entry, enter, leave));
  leave?.(node);
}
