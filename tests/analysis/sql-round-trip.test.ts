import { afterAll, describe, expect, it } from 'vitest';
import { createSqlParser } from '../../src/analysis/sql-parser.js';
import { shapeOf } from '../../src/jobs/prepare-job.js';

const parser = await createSqlParser();
afterAll(() => parser.close());

const roundTrip = async (sql: string) => {
  const parsed = await parser.parse(sql);
  if (!parsed.ok) throw new Error('does not parse');
  return parser.toSql(parsed.statements[0]!.node);
};

describe('turning an AST back into SQL', () => {
  it('keeps a floating-point constant with an integral value a double', async () => {
    expect(await roundTrip('SELECT x FROM t WHERE x > 1e12')).toBe('SELECT x FROM t WHERE (x > 1000000000000.0)');
  });

  it('keeps a string that looks like the internal marker a string', async () => {
    expect(await roundTrip("SELECT 'pds-double-x:5' AS s")).toBe("SELECT 'pds-double-x:5' AS s");
  });

  it('folds names to lower case and leaves the case of string constants alone', async () => {
    expect(await roundTrip("WITH Cte AS (SELECT Town AS T FROM Enterprises E) SELECT T, 'MiXed' AS Label FROM Cte WHERE T = 'ABC'")).toBe(
      "WITH cte AS (SELECT town AS t FROM enterprises AS e)SELECT t, 'MiXed' AS \"label\" FROM cte WHERE (t = 'ABC')",
    );
  });

  it('keeps fractional and decimal constants as written', async () => {
    expect(await roundTrip('SELECT 1.5 AS a, 2.0 AS b')).toBe('SELECT 1.5 AS a, 2.0 AS b');
  });
});

describe('reading constants outside the range of a double', () => {
  it('refuses 1e400 and -1e400 as syntax errors that say so', async () => {
    for (const sql of ['SELECT 1e400 AS x', 'SELECT x FROM t WHERE x > -1e400']) {
      expect(await parser.parse(sql)).toEqual({ ok: false, kind: 'syntax', message: 'a numeric constant is outside the range of DOUBLE' });
    }
  });
});

describe('turning very large constants back into SQL', () => {
  it('keeps a double too large to print without an exponent a double', async () => {
    expect(await roundTrip('SELECT x * 1e308 AS y FROM t')).toBe('SELECT (x * 1e+308) AS y FROM t');
  });
});

describe('the shape of a query (many jobs of one shape are held for review)', () => {
  const shape = async (sql: string) => {
    const parsed = await parser.parse(sql);
    if (!parsed.ok) throw new Error('does not parse');
    return shapeOf(parsed.statements);
  };

  it('is the same for the same query with other constants and other spacing', async () => {
    expect(await shape("SELECT town, count(*) FROM t WHERE kwh > 100 AND town = 'a' GROUP BY town")).toBe(await shape("SELECT town,   count(*) FROM t WHERE kwh > 2.5e6 AND town = 'bb' GROUP BY town"));
  });

  it('is the same whatever the case of its names, as DuckDB reads them', async () => {
    expect(await shape("SELECT Town AS T, count(*) FROM T1 x WHERE X.kwh > 100 GROUP BY Town")).toBe(await shape("SELECT town AS t, count(*) FROM t1 x WHERE x.kwh > 100 GROUP BY town"));
  });

  it('differs when anything but a constant differs', async () => {
    const base = await shape('SELECT town, count(*) FROM t WHERE kwh > 100 GROUP BY town');
    expect(await shape('SELECT town, count(*) FROM t WHERE kwh >= 100 GROUP BY town')).not.toBe(base);
    expect(await shape('SELECT town, sum(kwh) FROM t WHERE kwh > 100 GROUP BY town')).not.toBe(base);
  });
});
