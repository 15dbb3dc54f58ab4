import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { takeDerivedColumns, withDerivedColumns } from '../../src/analysis/derived-columns.js';
import { createSqlParser, type AstNode, type SqlParser } from '../../src/analysis/sql-parser.js';

/**
 * Window functions over an aggregation's output are computed in JavaScript from the released rows. DuckDB is the
 * oracle: each query below is run by DuckDB as written, and again as the platform runs it — the SQL without its
 * windowed columns, then `withDerivedColumns` over that output — and the two must agree. The table has ties, nulls
 * and two partitions, one row per key k, so the aggregation's output is the table itself.
 */
let instance: DuckDBInstance;
let connection: DuckDBConnection;
let parser: SqlParser;

beforeAll(async () => {
  instance = await DuckDBInstance.create(':memory:');
  connection = await instance.connect();
  await connection.run(`CREATE TABLE t AS SELECT * FROM (VALUES
    ('a', 'p', 1.0), ('b', 'p', 2.0), ('c', 'p', 2.0), ('d', 'p', NULL),
    ('e', 'q', 5.0), ('f', 'q', 3.0), ('g', 'q', 3.0), ('h', 'q', NULL), ('i', 'q', 0.5)) AS v(k, g, x)`);
  parser = await createSqlParser();
});
afterAll(() => {
  parser?.close();
  instance?.closeSync();
});

/** Rows as plain JSON numbers (DuckDB gives BIGINT and DECIMAL as text), rounded so float sums compare. */
const plain = (rows: unknown[][]) => rows.map((row) => row.map((value) => (value === null || typeof value === 'string' && !/^-?[\d.]+(e-?\d+)?$/.test(value) ? value : Math.round(Number(value) * 1e9) / 1e9)));
const isAggregate = (item: AstNode) => JSON.stringify(item).includes('"class":"FUNCTION","type":"FUNCTION"') && /"function_name":"(sum|count_star|count)"/.test(JSON.stringify(item));

async function bothWays(sql: string): Promise<{ duckdb: unknown[][]; derived: unknown[][] }> {
  const duckdb = plain((await connection.runAndReadAll(sql)).getRowsJson() as unknown[][]);
  const parsed = await parser.parse(sql);
  if (!parsed.ok) throw new Error(parsed.message);
  const root = parsed.statements[0]!.node;
  const derived = takeDerivedColumns(root, isAggregate, (detail) => new Error(detail));
  if (!derived) throw new Error('no window function was taken out');
  const released = (await connection.runAndReadAll(await parser.toSql(root))).getRowsJson() as unknown[][];
  return { duckdb, derived: plain(withDerivedColumns(plain(released), derived).rows) };
}

describe('window functions over released output agree with DuckDB', () => {
  const cases: Array<[string, string]> = [
    ['rank, descending, nulls last', 'rank() OVER (ORDER BY sum(x) DESC)'],
    ['dense_rank within a partition', 'dense_rank() OVER (PARTITION BY g ORDER BY sum(x))'],
    ['row_number with a tie broken by the key', 'row_number() OVER (ORDER BY sum(x), k)'],
    ['percent_rank within a partition', 'percent_rank() OVER (PARTITION BY g ORDER BY sum(x))'],
    ['cume_dist with nulls first', 'cume_dist() OVER (ORDER BY sum(x) NULLS FIRST)'],
    ['ntile of uneven buckets', 'ntile(4) OVER (ORDER BY k)'],
    ['ntile of more buckets than rows', 'ntile(7) OVER (PARTITION BY g ORDER BY k)'],
    ['a partition total', 'sum(sum(x)) OVER (PARTITION BY g)'],
    ['a running total whose peers share it', 'sum(sum(x)) OVER (ORDER BY sum(x))'],
    ['a running mean', 'avg(sum(x)) OVER (PARTITION BY g ORDER BY k)'],
    ['a running minimum, descending', 'min(sum(x)) OVER (ORDER BY k DESC)'],
    ['the largest key of a partition', 'max(k) OVER (PARTITION BY g)'],
    ['count of present values', 'count(sum(x)) OVER ()'],
    ['count(*) running over peers', 'count(*) OVER (ORDER BY sum(x))'],
    ['lag', 'lag(sum(x)) OVER (ORDER BY k)'],
    ['lead by two with a default', 'lead(sum(x), 2, -1) OVER (PARTITION BY g ORDER BY k)'],
    ['first_value', 'first_value(sum(x)) OVER (ORDER BY k DESC)'],
    ['last_value up to the last peer', 'last_value(sum(x)) OVER (ORDER BY sum(x))'],
    ['a share of the total, rounded', 'round(100 * sum(x) / sum(sum(x)) OVER (), 2)'],
    ['a share within a partition', 'sum(x) / sum(sum(x)) OVER (PARTITION BY g)'],
    ['the change from the row before', 'sum(x) - lag(sum(x)) OVER (ORDER BY k)'],
    ['a cast to an integer rounds half away from zero', 'CAST(sum(sum(x)) OVER (PARTITION BY g) * 1.5 AS INTEGER)'],
    ['negation and abs', '-sum(x) + abs(sum(x) - rank() OVER (ORDER BY k))'],
    ['a moving mean over the row and the two before it', 'avg(sum(x)) OVER (ORDER BY k ROWS BETWEEN 2 PRECEDING AND CURRENT ROW)'],
    ['a centred moving sum within a partition', 'sum(sum(x)) OVER (PARTITION BY g ORDER BY k ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)'],
    ['ROWS n PRECEDING as shorthand', 'sum(sum(x)) OVER (ORDER BY k ROWS 3 PRECEDING)'],
    ['a running total by rows, ties apart', 'sum(sum(x)) OVER (ORDER BY sum(x) ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)'],
    ['a total from the row to the end', 'sum(sum(x)) OVER (ORDER BY k ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)'],
    ['a RANGE from the current peers to the end', 'count(*) OVER (ORDER BY sum(x) RANGE BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING)'],
    ['last_value over the whole partition', 'last_value(sum(x)) OVER (PARTITION BY g ORDER BY k ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)'],
    ['a frame wholly after the row, empty at the end', 'max(sum(x)) OVER (ORDER BY k ROWS BETWEEN 1 FOLLOWING AND 2 FOLLOWING)'],
    ['a frame wholly before the row, empty at the start', 'first_value(sum(x)) OVER (ORDER BY k ROWS BETWEEN 2 PRECEDING AND 1 PRECEDING)'],
    ['count of present values in a moving frame', 'count(sum(x)) OVER (ORDER BY k ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING)'],
    ['min over the peers alone', 'min(k) OVER (ORDER BY sum(x) RANGE BETWEEN CURRENT ROW AND CURRENT ROW)'],
  ];
  for (const [name, expression] of cases) {
    it(name, async () => {
      const { duckdb, derived } = await bothWays(`SELECT k, g, sum(x) AS x, ${expression} AS d FROM t GROUP BY k, g ORDER BY k`);
      expect(derived).toEqual(duckdb);
    });
  }

  it.each([
    ['the top two of each partition', 'SELECT k, g, sum(x) AS x FROM t GROUP BY k, g QUALIFY row_number() OVER (PARTITION BY g ORDER BY sum(x) DESC NULLS LAST, k) <= 2 ORDER BY k'],
    ['beside a windowed column of the output', 'SELECT k, sum(x) AS x, rank() OVER (ORDER BY k) AS r FROM t GROUP BY k QUALIFY row_number() OVER (ORDER BY k DESC) <= 3 AND r > 1 ORDER BY k'],
    ['the same window as an output column, and one of its own', 'SELECT k, sum(x) AS x, rank() OVER (ORDER BY sum(x)) AS r FROM t GROUP BY k QUALIFY rank() OVER (ORDER BY sum(x)) <= 4 AND sum(sum(x)) OVER (ORDER BY k) > 2 ORDER BY k'],
  ])('a window function written only in the QUALIFY filters without being output: %s', async (_, sql) => {
    const { duckdb, derived } = await bothWays(sql);
    expect(derived).toEqual(duckdb);
    expect(derived[0]!.length).toBe(duckdb[0]!.length);
  });

  it('the ORDER BY and LIMIT apply after the windows, and may sort by a windowed column', async () => {
    const { duckdb, derived } = await bothWays('SELECT k, sum(x) AS x, rank() OVER (ORDER BY sum(x) DESC) AS place FROM t GROUP BY k ORDER BY place, k LIMIT 4 OFFSET 1');
    expect(derived).toEqual(duckdb);
  });

  it('QUALIFY keeps the rows whose windowed column passes it, after the windows and before the ORDER BY', async () => {
    const { duckdb, derived } = await bothWays('SELECT k, g, sum(x) AS total, rank() OVER (PARTITION BY g ORDER BY sum(x) DESC) AS r FROM t GROUP BY k, g QUALIFY r <= 2 OR total IS NULL ORDER BY g, r, k');
    expect(derived).toEqual(duckdb);
    expect(derived.length).toBeGreaterThan(0);
  });

  it('a positional GROUP BY still names the column it named with a windowed column before it', async () => {
    const { duckdb, derived } = await bothWays('SELECT rank() OVER (ORDER BY k) AS r, k, sum(x) AS x FROM t GROUP BY 2 ORDER BY 2');
    expect(derived).toEqual(duckdb);
  });

  it('an unnamed windowed column is named as the analyser names unnamed columns', async () => {
    const parsed = await parser.parse('SELECT k, sum(x), rank() OVER (ORDER BY sum(x)) FROM t GROUP BY k');
    const root = parsed.ok ? parsed.statements[0]!.node : {};
    const derived = takeDerivedColumns(root, isAggregate, (detail) => new Error(detail));
    expect(derived?.columns.map((column) => column.name)).toEqual(['rank_3']);
    expect((root.select_list as AstNode[]).map((item) => item.alias)).toEqual(['k', 'sum_2']);
  });

  it('a division by zero gives null, not infinity', async () => {
    const parsed = await parser.parse('SELECT k, sum(x) AS x, sum(x) / (sum(x) - sum(x)) AS d FROM t GROUP BY k');
    const root = parsed.ok ? parsed.statements[0]!.node : {};
    // Not a window: left in the SQL.
    expect(takeDerivedColumns(root, isAggregate, (detail) => new Error(detail))).toBeUndefined();
    const withWindow = await parser.parse('SELECT k, sum(x) AS x, sum(x) / (sum(sum(x)) OVER (PARTITION BY k) - sum(x)) AS d FROM t GROUP BY k ORDER BY k');
    const windowRoot = withWindow.ok ? withWindow.statements[0]!.node : {};
    const derived = takeDerivedColumns(windowRoot, isAggregate, (detail) => new Error(detail))!;
    const released = (await connection.runAndReadAll(await parser.toSql(windowRoot))).getRowsJson() as unknown[][];
    expect(withDerivedColumns(plain(released), derived).rows.map((row) => row[2])).toEqual(released.map(() => null));
  });
});

describe('what a windowed column may name', () => {
  const refusals: Array<[string, string, RegExp]> = [
    ['an aggregate that is not an output column', 'SELECT k, rank() OVER (ORDER BY sum(x)) AS r FROM t GROUP BY k', /not an output column/],
    ['a RANGE frame with an offset', 'SELECT k, sum(x) AS x, sum(sum(x)) OVER (ORDER BY sum(x) RANGE BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM t GROUP BY k', /RANGE with an offset/],
    ['a GROUPS frame', 'SELECT k, sum(x) AS x, sum(sum(x)) OVER (ORDER BY k GROUPS BETWEEN 1 PRECEDING AND CURRENT ROW) AS s FROM t GROUP BY k', /GROUPS frames are not supported/],
    ['EXCLUDE in a frame', 'SELECT k, sum(x) AS x, sum(sum(x)) OVER (ORDER BY k ROWS BETWEEN 1 PRECEDING AND 1 FOLLOWING EXCLUDE CURRENT ROW) AS s FROM t GROUP BY k', /EXCLUDE is not supported/],
    ['a frame reaching past the limit', 'SELECT k, sum(x) AS x, sum(sum(x)) OVER (ORDER BY k ROWS 1001 PRECEDING) AS s FROM t GROUP BY k', /at most 1000/],
    ['a frame on a rank', 'SELECT k, sum(x) AS x, rank() OVER (ORDER BY k ROWS 1 PRECEDING) AS s FROM t GROUP BY k', /rank reads the whole partition/],
    ['arithmetic on a group key', 'SELECT k, g, sum(x) AS x, sum(g) OVER () AS s FROM t GROUP BY k, g', /g is a group key/],
    ['a window function not offered', 'SELECT k, sum(x) AS x, nth_value(sum(x), 2) OVER (ORDER BY k) AS s FROM t GROUP BY k', /nth_value is not among/],
    ['a function of the data', "SELECT k, sum(x) AS x, concat(k, 'x') || rank() OVER (ORDER BY k) AS s FROM t GROUP BY k", /is not one of them/],
    ['a star beside it', 'SELECT *, rank() OVER (ORDER BY k) AS r FROM t GROUP BY ALL', /instead of \*/],
    ['only windowed columns', 'SELECT count(*) OVER () AS n FROM t GROUP BY k', /outputs none of its own/],
    ['an ORDER BY on what is not an output column', 'SELECT k, sum(x) AS x, rank() OVER (ORDER BY k) AS r FROM t GROUP BY k ORDER BY lower(k)', /ORDER BY sorts by output columns/],
  ];
  for (const [name, sql, message] of refusals) {
    it(`refuses ${name}`, async () => {
      const parsed = await parser.parse(sql);
      const root = parsed.ok ? parsed.statements[0]!.node : {};
      expect(() => takeDerivedColumns(root, isAggregate, (detail) => new Error(detail))).toThrow(message);
    });
  }
});
