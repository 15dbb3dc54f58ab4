import { defaultItemName, numericConstant, sameExpression, wholeNumberTypes } from './ast-builders.js';
import { byKeys, compareValues, orderedPositions, outputConditionOf, outputOrderOf, type OutputCondition, type OutputOrder } from './output-order.js';
import type { AstNode } from './sql-parser.js';

/**
 * Window functions over an aggregation's output — a share of the total, a rank, a running total, the change from
 * the month before — computed from the released output, after disclosure control (or the noise), never from the
 * data. `sum(kwh) / sum(sum(kwh)) OVER ()` is a share of the total of the *released* cells; a withheld cell has
 * no figures and is left out of every total, ranked last and given no share. That is post-processing of what is
 * released, so it tells nothing more; computed in DuckDB over the exact cells, a running total or a share would
 * give a withheld cell's value back as a difference.
 *
 * The job's SQL runs without these columns (and without its QUALIFY, ORDER BY and LIMIT, which SQL applies after
 * the windows); they are put back in place, and the output filtered, sorted and cut, by `withDerivedColumns`. The
 * expressions are evaluated here, in JavaScript: no SQL of the operator's is run outside the sandbox.
 */
export type DerivedExpression =
  /** A released column of the output, by its place in the output. */
  | { output: number }
  | { value: number | null }
  | { op: '+' | '-' | '*' | '/'; of: [DerivedExpression, DerivedExpression] }
  | { op: 'negate' | 'abs' | 'toInteger'; of: [DerivedExpression] }
  | { op: 'round'; of: [DerivedExpression]; digits: number }
  | {
      window: WindowFunction;
      of: DerivedExpression[];
      partition: DerivedExpression[];
      order: Array<{ by: DerivedExpression; descending: boolean; nullsFirst: boolean }>;
      /** lag / lead: how many rows back or ahead, and the value beyond the partition; ntile: the buckets. */
      offset?: number;
      fallback?: number | null;
      /** The frame when it is not the default (the partition up to the current row's last peer). */
      frame?: Frame;
    };

/**
 * Where a frame starts and ends, about the current row: `unbounded` (the partition's first or last row), `peer`
 * (the current row's first or last peer: RANGE … CURRENT ROW), or a number of rows (ROWS: negative before it,
 * positive after it, 0 the row itself).
 */
export type FrameBound = 'unbounded' | 'peer' | number;
export type Frame = { start: FrameBound; end: FrameBound };

export type WindowFunction =
  | 'rank' | 'dense_rank' | 'row_number' | 'percent_rank' | 'cume_dist' | 'ntile'
  | 'sum' | 'avg' | 'min' | 'max' | 'count'
  | 'lag' | 'lead' | 'first_value' | 'last_value';

export type DerivedColumns = {
  /** The output's width with these columns in place. */
  width: number;
  /**
   * The columns, by place in the output; a window written only in the QUALIFY is a hidden column after the output's
   * (`outputIndex` ≥ width), computed for the QUALIFY and then dropped.
   */
  columns: Array<{ outputIndex: number; name: string; expression: DerivedExpression }>;
  /** The query's QUALIFY, on output columns, applied after the columns are computed and before the ORDER BY. */
  qualify?: OutputCondition;
  /** The query's ORDER BY and LIMIT, by output place, applied after the columns are computed. */
  order?: OutputOrder['order'];
  limit?: OutputOrder['limit'];
};

/**
 * How a caller refuses (its own error code): `detail` says what is wrong, `at` where, and `rule` (when given) what
 * is allowed, to follow the place.
 */
type Refuse = (detail: string, at?: AstNode, rule?: string) => Error;

const windowFunctions = new Set<string>(['rank', 'dense_rank', 'row_number', 'percent_rank', 'cume_dist', 'ntile', 'sum', 'avg', 'min', 'max', 'count', 'count_star', 'lag', 'lead', 'first_value', 'last_value']);
/** Window functions that take no argument. */
const ranking = new Set(['rank', 'dense_rank', 'row_number', 'percent_rank', 'cume_dist']);
/** Functions whose arguments must be figures (numbers), not group keys. */
const numericWindows = new Set(['sum', 'avg']);
const numberTypes = new Set(['DOUBLE', 'FLOAT', 'DECIMAL']);

/** Whether an expression holds a window function at its own level (not inside a subquery). */
function holdsWindow(value: unknown): boolean {
  if (value === null || typeof value !== 'object') return false;
  if (Array.isArray(value)) return value.some(holdsWindow);
  const node = value as AstNode;
  if (node.class === 'SUBQUERY' || node.type === 'SELECT_NODE' || node.type === 'SET_OPERATION_NODE') return false;
  if (node.class === 'WINDOW') return true;
  return Object.values(node).some(holdsWindow);
}

const supported =
  'A window function over an aggregation is computed from the released output: its arguments, PARTITION BY and ORDER BY name the output columns (by name or as written in SELECT); the column may combine them with constants, + − × ÷, round, abs and casts';

/** Functions a frame applies to; the others (ranks, lag, lead, ntile) read the partition whatever the frame. */
const framed = new Set(['sum', 'avg', 'min', 'max', 'count', 'count_star', 'first_value', 'last_value']);
/** The most rows a ROWS frame reaches either way: a moving figure over the output, not a second total. */
const MAX_FRAME_OFFSET = 1000;
const frameRule = `a frame is ROWS with UNBOUNDED, CURRENT ROW or up to ${MAX_FRAME_OFFSET} rows PRECEDING or FOLLOWING (ROWS BETWEEN 2 PRECEDING AND CURRENT ROW), or RANGE with UNBOUNDED and CURRENT ROW`;

/**
 * A window's frame as DuckDB parsed it: undefined for the default, a Frame for ROWS and for RANGE bounded by
 * UNBOUNDED or CURRENT ROW; a string saying what is wrong with any other (RANGE with an offset, GROUPS, EXCLUDE).
 */
function frameOf(node: AstNode): Frame | undefined | string {
  const defaultBounds = node.start === 'UNBOUNDED_PRECEDING' && node.end === 'CURRENT_ROW_RANGE';
  if (node.exclude_clause !== 'NO_OTHER') return 'EXCLUDE is not supported';
  if (defaultBounds && !node.start_expr && !node.end_expr) return undefined;
  const bound = (kind: unknown, expression: AstNode | null | undefined, side: 'start' | 'end'): FrameBound | { wrong: string } => {
    switch (kind) {
      case 'UNBOUNDED_PRECEDING':
        return side === 'start' ? 'unbounded' : { wrong: 'a frame cannot end at UNBOUNDED PRECEDING' };
      case 'UNBOUNDED_FOLLOWING':
        return side === 'end' ? 'unbounded' : { wrong: 'a frame cannot start at UNBOUNDED FOLLOWING' };
      case 'CURRENT_ROW_RANGE':
        return 'peer';
      case 'CURRENT_ROW_ROWS':
        return 0;
      case 'EXPR_PRECEDING_ROWS':
      case 'EXPR_FOLLOWING_ROWS': {
        const rows = numericConstant(expression ?? undefined);
        if (rows === undefined || !Number.isInteger(rows) || rows < 0 || rows > MAX_FRAME_OFFSET) return { wrong: `a frame's PRECEDING and FOLLOWING are whole numbers of rows, at most ${MAX_FRAME_OFFSET}` };
        return kind === 'EXPR_PRECEDING_ROWS' ? -rows : rows;
      }
      default:
        return { wrong: 'RANGE with an offset and GROUPS frames are not supported' };
    }
  };
  const start = bound(node.start, node.start_expr, 'start');
  const end = bound(node.end, node.end_expr, 'end');
  if (typeof start === 'object') return start.wrong;
  if (typeof end === 'object') return end.wrong;
  return { start, end };
}

/**
 * Takes the select items holding window functions out of an aggregating SELECT (in place), with its QUALIFY, ORDER
 * BY and LIMIT, and says how to compute them from the released output. Undefined when there are none: the query is left
 * as it was. `isAggregate` says whether a select item is an aggregate (a figure) rather than a group key.
 */
export function takeDerivedColumns(root: AstNode, isAggregate: (item: AstNode) => boolean, refuse: Refuse): DerivedColumns | undefined {
  const items = root.select_list as AstNode[];
  const windowed = items.map((item) => item.class !== 'STAR' && holdsWindow(item));
  if (!windowed.includes(true) && !holdsWindow(root.qualify)) return undefined;
  if (items.some((item) => item.class === 'STAR')) throw refuse('name the output columns instead of *', undefined, supported);
  // Unnamed columns keep the names they would have had with the windowed ones in place.
  items.forEach((item, index) => {
    if (!item.alias) item.alias = defaultItemName(item, index);
  });
  const released = items.flatMap((item, index) => (windowed[index] ? [] : [{ item, index, figure: isAggregate(item) }]));
  if (released.length === 0) throw refuse('the query outputs none of its own', items[0], supported);

  /** A released column this expression is: the same expression as a released item, or its name. */
  const releasedColumn = (node: AstNode) =>
    released.find(({ item }) => sameExpression(item, node)) ??
    (node.class === 'COLUMN_REF' && node.column_names.length === 1 ? released.find(({ item }) => item.alias === node.column_names[0]) : undefined);

  const expressionOf = (node: AstNode, needsNumber: boolean, insideWindow: boolean): DerivedExpression => {
    const column = releasedColumn(node);
    if (column) {
      if (needsNumber && !column.figure) throw refuse(`arithmetic, sum and avg take figures, and ${column.item.alias} is a group key`, node, supported);
      return { output: column.index };
    }
    if (node.class === 'CONSTANT') {
      if (node.value?.is_null) return { value: null };
      const value = numericConstant(node);
      if (value === undefined) throw refuse('only numbers are constants here', node, supported);
      return { value };
    }
    if (node.class === 'CAST') {
      const type = String(node.cast_type?.id);
      if (node.try_cast || !(wholeNumberTypes.has(type) || numberTypes.has(type))) throw refuse('a cast here is to a number type', node, supported);
      const of = expressionOf(node.child, true, insideWindow);
      return wholeNumberTypes.has(type) ? { op: 'toInteger', of: [of] } : of;
    }
    if (node.class === 'FUNCTION') {
      const name = String(node.function_name).toLowerCase();
      const children = (node.children ?? []) as AstNode[];
      if (['+', '-', '*', '/'].includes(name) && children.length === 2) {
        return { op: name as '+', of: [expressionOf(children[0]!, true, insideWindow), expressionOf(children[1]!, true, insideWindow)] };
      }
      if (name === '-' && children.length === 1) return { op: 'negate', of: [expressionOf(children[0]!, true, insideWindow)] };
      if (name === '+' && children.length === 1) return expressionOf(children[0]!, true, insideWindow);
      if (name === 'abs' && children.length === 1) return { op: 'abs', of: [expressionOf(children[0]!, true, insideWindow)] };
      if (name === 'round' && (children.length === 1 || children.length === 2)) {
        const digits = children[1] ? numericConstant(children[1]) : 0;
        if (digits === undefined || !Number.isInteger(digits) || Math.abs(digits) > 15) throw refuse('round takes a whole number of digits', node, supported);
        return { op: 'round', of: [expressionOf(children[0]!, true, insideWindow)], digits };
      }
      // What is left aggregates (an aggregate call not among the output columns) or is another function.
      if (isAggregate(node)) throw refuse(`${name}(…) here is not an output column: add it to SELECT as a column of its own`, node, supported);
      throw refuse(`${name} is not one of them`, node, supported);
    }
    if (node.class === 'WINDOW') {
      if (insideWindow) throw refuse('a window function cannot be nested in another', node, supported);
      return windowOf(node);
    }
    throw refuse('this expression is not an output column', node, supported);
  };

  const windowOf = (node: AstNode): DerivedExpression => {
    const name = String(node.function_name).toLowerCase();
    if (!windowFunctions.has(name)) throw refuse(`${name} is not among the window functions offered (rank, dense_rank, row_number, percent_rank, cume_dist, ntile, sum, avg, min, max, count, lag, lead, first_value, last_value)`, node, supported);
    const frame = frameOf(node);
    if (typeof frame === 'string') throw refuse(frame, node, `${frameRule}. ${supported}`);
    if (frame && !framed.has(name)) throw refuse(`${name} reads the whole partition: a frame applies to sum, avg, min, max, count, first_value and last_value`, node, supported);
    if (node.distinct || node.ignore_nulls || node.filter_expr || (node.arg_orders ?? []).length > 0) throw refuse('DISTINCT, IGNORE NULLS, FILTER and ordered arguments are not supported', node, supported);
    const children = (node.children ?? []) as AstNode[];
    const window = name === 'count_star' ? 'count' : (name as WindowFunction);
    const partition = ((node.partitions ?? []) as AstNode[]).map((entry) => expressionOf(entry, false, true));
    const order = ((node.orders ?? []) as AstNode[]).map((entry) => ({ by: expressionOf(entry.expression, false, true), descending: entry.type === 'DESCENDING', nullsFirst: entry.null_order === 'NULLS FIRST' }));
    const base = { window, partition, order, ...(frame ? { frame } : {}) } as const;
    if (ranking.has(name)) {
      if (children.length > 0) throw refuse(`${name} takes no argument`, node, supported);
      return { ...base, of: [] };
    }
    if (name === 'ntile') {
      const buckets = numericConstant(children[0]);
      if (children.length !== 1 || buckets === undefined || !Number.isInteger(buckets) || buckets < 1) throw refuse('ntile takes a whole number of buckets', node, supported);
      return { ...base, of: [], offset: buckets };
    }
    if (name === 'count_star' || (name === 'count' && children.length === 0)) return { ...base, of: [] };
    if (name === 'lag' || name === 'lead') {
      const offset = node.offset_expr ? numericConstant(node.offset_expr) : 1;
      if (children.length !== 1 || offset === undefined || !Number.isInteger(offset) || offset < 0) throw refuse(`${name} takes a column and a whole number of rows`, node, supported);
      const fallback = node.default_expr ? (node.default_expr.value?.is_null ? null : numericConstant(node.default_expr)) : null;
      if (fallback === undefined) throw refuse(`${name}'s default is a number`, node, supported);
      return { ...base, of: [expressionOf(children[0]!, false, true)], offset, fallback };
    }
    if (children.length !== 1) throw refuse(`${name} takes one column`, node, supported);
    return { ...base, of: [expressionOf(children[0]!, numericWindows.has(name), true)] };
  };

  const columns = items.flatMap((item, index) => (windowed[index] ? [{ outputIndex: index, name: String(item.alias), expression: expressionOf(item, false, false) }] : []));
  // QUALIFY filters after the windows, and SQL sorts and cuts after that, so all three go with them (by output place,
  // which the full select list gives). `QUALIFY place <= 3` keeps the top three. A window written only in the
  // QUALIFY (`QUALIFY row_number() OVER (PARTITION BY town ORDER BY sum(kwh) DESC) <= 3`) becomes a hidden column
  // after the output's, computed from the released output like the others and dropped once the QUALIFY has run.
  const qualifying = root.qualify as AstNode | null;
  const hidden: AstNode[] = [];
  const referring = qualifying
    ? replaceWindows(qualifying, (window) => {
        if (items.some((item) => sameExpression(item, window))) return window;
        const name = `${hiddenPrefix}${hidden.length}`;
        hidden.push({ ...window, alias: name });
        return { class: 'COLUMN_REF', type: 'COLUMN_REF', alias: '', query_location: window.query_location, column_names: [name] };
      })
    : null;
  hidden.forEach((window, index) => columns.push({ outputIndex: items.length + index, name: String(window.alias), expression: expressionOf(window, false, false) }));
  const qualify = referring
    ? outputConditionOf(referring, [...items, ...hidden], (detail) => refuse(`QUALIFY filters the released output by its columns and window functions over them: ${detail}`, qualifying!), 'QUALIFY')
    : undefined;
  root.qualify = null;
  const { order, limit } = outputOrderOf(root, (detail) => refuse(`with a window function, ORDER BY and LIMIT apply to the released output: ${detail}`));
  root.modifiers = (root.modifiers as AstNode[]).filter((modifier) => modifier.type !== 'ORDER_MODIFIER' && modifier.type !== 'LIMIT_MODIFIER');
  // GROUP BY 2 names the second column as written; without the windowed ones, it may be the first.
  const placeOf = new Map(released.map(({ index }, place) => [index + 1, place + 1]));
  root.group_expressions = (root.group_expressions as AstNode[]).map((expression) => {
    if (expression.class !== 'CONSTANT' || expression.value?.type?.id !== 'INTEGER') return expression;
    const place = placeOf.get(Number(expression.value.value));
    if (place === undefined) throw refuse(`GROUP BY cannot name a window function's column`, expression, supported);
    return { ...expression, value: { ...expression.value, value: place } };
  });
  root.select_list = released.map(({ item }) => item);
  return { width: items.length, columns, ...(qualify ? { qualify } : {}), ...(order ? { order } : {}), ...(limit ? { limit } : {}) };
}

/** The name of a QUALIFY's own window column (never an output column: the analyser reserves the prefix). */
const hiddenPrefix = '__pds_qualify_';

/** A copy of an expression with each window function at its own level replaced by what `replace` gives for it. */
function replaceWindows(node: AstNode, replace: (window: AstNode) => AstNode): AstNode {
  const walk = (value: unknown): unknown => {
    if (value === null || typeof value !== 'object') return value;
    if (Array.isArray(value)) return value.map(walk);
    const entry = value as AstNode;
    if (entry.class === 'SUBQUERY' || entry.type === 'SELECT_NODE' || entry.type === 'SET_OPERATION_NODE') return entry;
    if (entry.class === 'WINDOW') return replace(entry);
    return Object.fromEntries(Object.entries(entry).map(([key, child]) => [key, walk(child)]));
  };
  return walk(node) as AstNode;
}

/** The output's columns with the derived ones in place. */
export function withDerivedNames<Column extends { name: string }>(columns: Column[], derived: DerivedColumns | undefined, derivedColumn: (name: string) => Column): Column[] {
  if (!derived) return columns;
  const result: Column[] = [];
  let next = 0;
  for (let index = 0; index < derived.width; index++) {
    const own = derived.columns.find((column) => column.outputIndex === index);
    result.push(own ? derivedColumn(own.name) : columns[next++]!);
  }
  return result;
}

/**
 * The released rows with the derived columns in place, filtered by the query's QUALIFY, sorted and cut by its ORDER
 * BY and LIMIT, and the place each output row came from in `rows`.
 */
export function withDerivedColumns(rows: unknown[][], derived: DerivedColumns): { rows: unknown[][]; positions: number[] } {
  const derivedAt = new Set(derived.columns.map((column) => column.outputIndex));
  // The output's columns, then a QUALIFY's hidden ones.
  const computedWidth = Math.max(derived.width, ...derived.columns.map((column) => column.outputIndex + 1));
  const full = rows.map((row) => {
    const values = row[Symbol.iterator]();
    return Array.from({ length: computedWidth }, (_, index) => (derivedAt.has(index) ? null : (values.next().value ?? null)));
  });
  // Each derived column reads released columns only, so the order they are computed in does not matter.
  for (const column of derived.columns) {
    const values = evaluate(column.expression, full);
    full.forEach((row, index) => (row[column.outputIndex] = values[index] ?? null));
  }
  const positions = orderedPositions(full, { ...(derived.qualify ? { having: derived.qualify } : {}), ...(derived.order ? { order: derived.order } : {}), ...(derived.limit ? { limit: derived.limit } : {}) });
  return { rows: positions.map((position) => (computedWidth > derived.width ? full[position]!.slice(0, derived.width) : full[position]!)), positions };
}

type Value = unknown;
const asNumber = (value: Value): number | null => (typeof value === 'number' && Number.isFinite(value) ? value : null);
/** A finite number, or null: a division by zero gives null (DuckDB's DOUBLE would give ±infinity, which JSON has no word for). */
const finite = (value: number): number | null => (Number.isFinite(value) ? value : null);
/** Half away from zero, as DuckDB rounds. */
const roundAway = (value: number, digits: number) => {
  const scale = 10 ** digits;
  return (Math.sign(value) * Math.round(Math.abs(value) * scale)) / scale;
};

/** An expression's value on every row, in order. */
function evaluate(expression: DerivedExpression, rows: Value[][]): Value[] {
  if ('output' in expression) return rows.map((row) => row[expression.output] ?? null);
  if ('value' in expression) return rows.map(() => expression.value);
  if ('window' in expression) return evaluateWindow(expression, rows);
  const parts = expression.of.map((part) => evaluate(part, rows));
  return rows.map((_, index) => {
    const [a, b] = parts.map((values) => asNumber(values[index]));
    if (a === null || a === undefined) return null;
    switch (expression.op) {
      case 'negate':
        return -a;
      case 'abs':
        return Math.abs(a);
      case 'toInteger':
        return roundAway(a, 0);
      case 'round':
        return roundAway(a, expression.digits);
    }
    if (b === null || b === undefined) return null;
    switch (expression.op) {
      case '+':
        return finite(a + b);
      case '-':
        return finite(a - b);
      case '*':
        return finite(a * b);
      case '/':
        return b === 0 ? null : finite(a / b);
    }
  });
}

/** What a frame's figure is made of. */
type Figure = Extract<WindowFunction, 'sum' | 'avg' | 'min' | 'max' | 'count'>;
const figures = new Set<WindowFunction>(['sum', 'avg', 'min', 'max', 'count']);

/**
 * Adds values one at a time and says what sum, avg, min, max or count they make (nulls left out, as SQL's
 * aggregates leave them; `countRows`: count(*), which counts every row).
 */
class FigureAccumulator {
  private total = 0;
  private present = 0;
  private best: Value = null;

  constructor(private readonly figure: Figure, private readonly countRows: boolean) {}

  add(value: Value): void {
    if (this.figure === 'count') {
      if (this.countRows || value !== null) this.present++;
    } else if (this.figure === 'min' || this.figure === 'max') {
      const sign = this.figure === 'min' ? 1 : -1;
      if (value !== null && (this.best === null || sign * compareValues(value, this.best) < 0)) this.best = value;
    } else {
      const number = asNumber(value);
      if (number !== null) [this.total, this.present] = [this.total + number, this.present + 1];
    }
  }

  get value(): Value {
    if (this.figure === 'count') return this.present;
    if (this.figure === 'min' || this.figure === 'max') return this.best;
    return this.present === 0 ? null : finite(this.figure === 'sum' ? this.total : this.total / this.present);
  }
}

/** The figure over each prefix of `values`: entry i is the figure of values 0..i. */
function prefixFigures(figure: Figure, countRows: boolean, values: Value[]): Value[] {
  const accumulator = new FigureAccumulator(figure, countRows);
  return values.map((value) => {
    accumulator.add(value);
    return accumulator.value;
  });
}

/**
 * The figure over each row's frame, `frames[i]` = [first, last] positions in `values` (empty when first > last).
 * A frame that starts at the partition's first row is read off the running figure at its last row, one that ends
 * at the partition's last row off the running figure from the end; any other adds up its own rows (a ROWS frame
 * reaches at most MAX_FRAME_OFFSET rows either way), and rows sharing a frame (peers) share the work.
 */
function frameFigures(figure: Figure, countRows: boolean, values: Value[], frames: Array<[number, number]>, frame: Frame): Value[] {
  const empty = new FigureAccumulator(figure, countRows).value;
  if (frame.start === 'unbounded') {
    const prefix = prefixFigures(figure, countRows, values);
    return frames.map(([first, last]) => (first > last ? empty : prefix[last]!));
  }
  if (frame.end === 'unbounded') {
    const suffix = prefixFigures(figure, countRows, [...values].reverse()).reverse();
    return frames.map(([first, last]) => (first > last ? empty : suffix[first]!));
  }
  let previous: { first: number; last: number; value: Value } | undefined;
  return frames.map(([first, last]) => {
    if (first > last) return empty;
    if (previous?.first === first && previous.last === last) return previous.value;
    const accumulator = new FigureAccumulator(figure, countRows);
    for (let position = first; position <= last; position++) accumulator.add(values[position] ?? null);
    previous = { first, last, value: accumulator.value };
    return previous.value;
  });
}

/** A frame bound's position in a partition of `n` rows, for the row at `position` whose peers span `peers`. */
function framePosition(bound: FrameBound, side: 'start' | 'end', position: number, peers: [number, number], n: number): number {
  if (bound === 'unbounded') return side === 'start' ? 0 : n - 1;
  if (bound === 'peer') return side === 'start' ? peers[0] : peers[1];
  // Rows beyond the partition are not in it: a frame that lies wholly outside it comes out empty (start > end).
  return side === 'start' ? Math.max(0, position + bound) : Math.min(n - 1, position + bound);
}

function evaluateWindow(expression: Extract<DerivedExpression, { window: WindowFunction }>, rows: Value[][]): Value[] {
  const partitionValues = expression.partition.map((part) => evaluate(part, rows));
  const orderValues = expression.order.map((entry) => evaluate(entry.by, rows));
  const argument = expression.of[0] ? evaluate(expression.of[0], rows) : [];
  const partitions = new Map<string, number[]>();
  rows.forEach((_, index) => {
    const key = JSON.stringify(partitionValues.map((values) => values[index] ?? null));
    const members = partitions.get(key);
    if (members) members.push(index);
    else partitions.set(key, [index]);
  });
  // Nulls sort last unless asked first, in either direction (DuckDB's default); ties keep the rows' order.
  const compare = byKeys(expression.order, (row, key) => orderValues[key]![row]);
  const result: Value[] = new Array(rows.length).fill(null);
  for (const members of partitions.values()) {
    const sorted = expression.order.length > 0 ? [...members].sort(compare) : members;
    const n = sorted.length;
    // Peers share their ORDER BY values; without an ORDER BY the whole partition is one group of peers.
    const peerEnd: number[] = new Array(n);
    const peerStart: number[] = new Array(n);
    for (let start = 0; start < n; ) {
      let end = start;
      while (end + 1 < n && compare(sorted[start]!, sorted[end + 1]!) === 0) end++;
      for (let position = start; position <= end; position++) [peerStart[position], peerEnd[position]] = [start, end];
      start = end + 1;
    }
    // Each row's frame, [first, last] in `sorted`: by default the partition up to its last peer.
    const frame = expression.frame ?? { start: 'unbounded', end: 'peer' };
    const frames = sorted.map((_, position): [number, number] => {
      const peers: [number, number] = [peerStart[position]!, peerEnd[position]!];
      return [framePosition(frame.start, 'start', position, peers, n), framePosition(frame.end, 'end', position, peers, n)];
    });
    const framed = figures.has(expression.window)
      ? frameFigures(expression.window as Figure, expression.of.length === 0, sorted.map((rowIndex) => argument[rowIndex] ?? null), frames, frame)
      : [];
    let denseRank = 0;
    sorted.forEach((rowIndex, position) => {
      if (peerStart[position] === position) denseRank++;
      const [frameStart, frameEnd] = frames[position]!;
      switch (expression.window) {
        case 'rank':
          result[rowIndex] = peerStart[position]! + 1;
          break;
        case 'dense_rank':
          result[rowIndex] = denseRank;
          break;
        case 'row_number':
          result[rowIndex] = position + 1;
          break;
        case 'percent_rank':
          result[rowIndex] = n > 1 ? peerStart[position]! / (n - 1) : 0;
          break;
        case 'cume_dist':
          result[rowIndex] = (peerEnd[position]! + 1) / n;
          break;
        case 'ntile': {
          // n rows into k buckets: the first n mod k buckets hold one row more.
          const buckets = Math.min(expression.offset!, n);
          const size = Math.floor(n / buckets);
          const larger = n % buckets;
          const boundary = larger * (size + 1);
          result[rowIndex] = position < boundary ? Math.floor(position / (size + 1)) + 1 : larger + Math.floor((position - boundary) / size) + 1;
          break;
        }
        case 'lag':
        case 'lead': {
          const target = position + (expression.window === 'lag' ? -expression.offset! : expression.offset!);
          result[rowIndex] = target >= 0 && target < n ? (argument[sorted[target]!] ?? null) : (expression.fallback ?? null);
          break;
        }
        case 'first_value':
          result[rowIndex] = frameStart <= frameEnd ? (argument[sorted[frameStart]!] ?? null) : null;
          break;
        case 'last_value':
          result[rowIndex] = frameStart <= frameEnd ? (argument[sorted[frameEnd]!] ?? null) : null;
          break;
        default:
          result[rowIndex] = framed[position] ?? null;
      }
    });
  }
  return result;
}
