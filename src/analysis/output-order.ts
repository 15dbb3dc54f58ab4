import { numericConstant, sameExpression } from './ast-builders.js';
import type { AstNode } from './sql-parser.js';

/**
 * The outermost HAVING, ORDER BY and LIMIT of an aggregation over protected data, applied to the released output
 * rather than to the exact one: to a noisy output (differential privacy), or to the cells disclosure control has
 * checked, suppressed cells carrying null figures. Filtering and sorting what is released is post-processing of
 * it, so it answers nothing about a value that was not released; applied to the exact figures, "HAVING sum(kwh) >
 * x" would tell, cell by cell, whether a suppressed value passes x.
 */
export type OutputCondition =
  | { op: 'and' | 'or'; of: OutputCondition[] }
  | { op: 'not'; of: OutputCondition }
  | { op: 'isNull' | 'isNotNull'; operand: OutputOperand }
  | { op: '=' | '<>' | '<' | '<=' | '>' | '>='; left: OutputOperand; right: OutputOperand };
export type OutputOperand = { output: number } | { value: string | number };
export type OutputOrder = {
  having?: OutputCondition;
  order?: Array<{ outputIndex: number; descending: boolean; nullsFirst: boolean }>;
  limit?: { count: number | null; offset: number };
};

/** How a caller refuses what cannot be applied to output rows (its own error code and wording). */
type Refuse = (detail: string) => Error;

/** A select item's name as a query over it sees it: its alias, or the column it is; '' for an unnamed expression. */
export const itemName = (item: AstNode): string => String(item.alias || (item.class === 'COLUMN_REF' ? (item.column_names as string[]).at(-1) : ''));

/** The output column an expression names: by its alias or name, or as the same expression as a select item. */
export function outputIndexOf(expression: AstNode, items: AstNode[]): number {
  if (expression.class === 'COLUMN_REF' && expression.column_names.length === 1) {
    const named = items.map(itemName).indexOf(String(expression.column_names[0]));
    if (named >= 0) return named;
  }
  return items.findIndex((item) => sameExpression(item, expression));
}

const comparisons: Record<string, Extract<OutputCondition, { left: OutputOperand }>['op']> = {
  COMPARE_EQUAL: '=',
  COMPARE_NOTEQUAL: '<>',
  COMPARE_LESSTHAN: '<',
  COMPARE_LESSTHANOREQUALTO: '<=',
  COMPARE_GREATERTHAN: '>',
  COMPARE_GREATERTHANOREQUALTO: '>=',
};

/**
 * A HAVING as a condition on output rows. Only output columns can be compared: a figure that is not released has
 * no released value to compare (under DP it would need noise, and budget, of its own).
 */
export function outputConditionOf(expression: AstNode, items: AstNode[], refuse: Refuse, clause: 'HAVING' | 'QUALIFY' = 'HAVING'): OutputCondition {
  const refused = () => refuse(`${clause} compares output columns (by name or as written in SELECT) with constants (=, <>, <, <=, >, >=, IN, IS NULL), combined with AND, OR and NOT`);
  const operand = (node: AstNode): OutputOperand => {
    if (node.class === 'CONSTANT' && !node.value?.is_null) {
      if (node.value.type?.id === 'VARCHAR') return { value: String(node.value.value) };
      const value = numericConstant(node);
      if (value === undefined) throw refused();
      return { value };
    }
    const output = outputIndexOf(node, items);
    if (output < 0) throw refused();
    return { output };
  };
  if (expression.type === 'CONJUNCTION_AND' || expression.type === 'CONJUNCTION_OR') {
    return { op: expression.type === 'CONJUNCTION_AND' ? 'and' : 'or', of: (expression.children as AstNode[]).map((child) => outputConditionOf(child, items, refuse, clause)) };
  }
  if (expression.type === 'OPERATOR_NOT') return { op: 'not', of: outputConditionOf(expression.children[0], items, refuse, clause) };
  if (expression.type === 'COMPARE_IN' || expression.type === 'COMPARE_NOT_IN') {
    // x IN (a, b) is x = a OR x = b, and NOT IN its negation, nulls included.
    const [left, ...values] = (expression.children as AstNode[]).map(operand);
    const any: OutputCondition = { op: 'or', of: values.map((right) => ({ op: '=' as const, left: left!, right })) };
    return expression.type === 'COMPARE_IN' ? any : { op: 'not', of: any };
  }
  if (expression.type === 'OPERATOR_IS_NULL' || expression.type === 'OPERATOR_IS_NOT_NULL') {
    return { op: expression.type === 'OPERATOR_IS_NULL' ? 'isNull' : 'isNotNull', operand: operand(expression.children[0]) };
  }
  const op = comparisons[String(expression.type)];
  if (expression.class === 'COMPARISON' && op) return { op, left: operand(expression.left), right: operand(expression.right) };
  throw refused();
}

/**
 * The ORDER BY (by output columns: their names, positions or expressions) and LIMIT / OFFSET of a query, as the
 * release applies them.
 */
export function outputOrderOf(node: AstNode, refuse: Refuse): Pick<OutputOrder, 'order' | 'limit'> {
  const items = node.select_list as AstNode[];
  const order: NonNullable<OutputOrder['order']> = [];
  let limit: OutputOrder['limit'] | undefined;
  const integerOf = (constant: AstNode | null | undefined): number | null => {
    if (!constant) return null;
    const value = Number(constant.value?.value);
    if (constant.class !== 'CONSTANT' || constant.value?.is_null || !Number.isSafeInteger(value) || value < 0) throw refuse('LIMIT and OFFSET take whole numbers');
    return value;
  };
  for (const modifier of node.modifiers as AstNode[]) {
    if (modifier.type === 'ORDER_MODIFIER') {
      for (const entry of modifier.orders as AstNode[]) {
        const expression = entry.expression as AstNode;
        const outputIndex = expression.class === 'CONSTANT' && expression.value?.type?.id === 'INTEGER' ? Number(expression.value.value) - 1 : outputIndexOf(expression, items);
        if (outputIndex < 0 || outputIndex >= items.length) throw refuse('ORDER BY sorts by output columns (their names, positions or expressions)');
        order.push({ outputIndex, descending: entry.type === 'DESCENDING', nullsFirst: entry.null_order === 'NULLS FIRST' });
      }
    } else if (modifier.type === 'LIMIT_MODIFIER') {
      limit = { count: integerOf(modifier.limit), offset: integerOf(modifier.offset) ?? 0 };
    } else {
      throw refuse(`${String(modifier.type).toLowerCase().replace('_modifier', '')} is not supported`);
    }
  }
  return { ...(order.length > 0 ? { order } : {}), ...(limit ? { limit } : {}) };
}

/** Values in DuckDB's order: numbers by value, anything else by its text. */
export function compareValues(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  const [x, y] = [String(a), String(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * A comparator of rows by sort keys in SQL's order: `keyOf(row, k)` is row's k-th key; each key ascending or
 * descending, nulls last unless asked first, in either direction (DuckDB's default). 0 when every key ties.
 */
export function byKeys(order: ReadonlyArray<{ descending: boolean; nullsFirst: boolean }>, keyOf: (row: number, key: number) => unknown): (left: number, right: number) => number {
  return (left, right) => {
    for (const [key, { descending, nullsFirst }] of order.entries()) {
      const [a, b] = [keyOf(left, key) ?? null, keyOf(right, key) ?? null];
      if (a === null || b === null) {
        if (a !== b) return (a === null) === nullsFirst ? -1 : 1;
        continue;
      }
      const difference = compareValues(a, b);
      if (difference !== 0) return descending ? -difference : difference;
    }
    return 0;
  };
}

/** A HAVING on one output row, in SQL's three values: null when a compared value is null. */
function holds(condition: OutputCondition, row: unknown[]): boolean | null {
  const value = (operand: OutputOperand) => ('output' in operand ? row[operand.output] : operand.value) ?? null;
  switch (condition.op) {
    case 'and': {
      const results = condition.of.map((part) => holds(part, row));
      return results.includes(false) ? false : results.includes(null) ? null : true;
    }
    case 'or': {
      const results = condition.of.map((part) => holds(part, row));
      return results.includes(true) ? true : results.includes(null) ? null : false;
    }
    case 'not': {
      const result = holds(condition.of, row);
      return result === null ? null : !result;
    }
    case 'isNull':
      return value(condition.operand) === null;
    case 'isNotNull':
      return value(condition.operand) !== null;
    default: {
      const [left, right] = [value(condition.left), value(condition.right)];
      if (left === null || right === null) return null;
      const difference = compareValues(left, right);
      return { '=': difference === 0, '<>': difference !== 0, '<': difference < 0, '<=': difference <= 0, '>': difference > 0, '>=': difference >= 0 }[condition.op];
    }
  }
}

/**
 * The positions of the rows kept by the HAVING, sorted by the ORDER BY (nulls last unless asked first; ties keep
 * the order they came in) and cut by the LIMIT and OFFSET.
 */
export function orderedPositions(rows: unknown[][], spec: OutputOrder): number[] {
  let result = [...rows.keys()];
  if (spec.having) result = result.filter((index) => holds(spec.having!, rows[index]!) === true);
  if (spec.order?.length) {
    const order = spec.order;
    result.sort(byKeys(order, (row, key) => rows[row]![order[key]!.outputIndex]));
  }
  if (spec.limit) result = result.slice(spec.limit.offset, spec.limit.count === null ? undefined : spec.limit.offset + spec.limit.count);
  return result;
}
