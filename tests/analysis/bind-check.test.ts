import { afterAll, describe, expect, it } from 'vitest';
import type { CatalogueDataset } from '../../src/analysis/analyse-query.js';
import { binderMessage, createBindCheck } from '../../src/analysis/bind-check.js';
import { AppError } from '../../src/errors/app-error.js';

const firms: CatalogueDataset = {
  id: 'firms',
  grade: 'L2',
  openData: false,
  privacyUnit: 'firm_id',
  columns: [
    { name: 'firm_id', class: 'direct_identifier', type: 'VARCHAR' },
    { name: 'town', class: 'attribute', type: 'VARCHAR' },
    { name: 'founded', class: 'attribute', type: 'DATE' },
    { name: 'capital', class: 'sensitive', type: 'DECIMAL(18,2)' },
  ],
};
const catalogue = new Map([[firms.id, firms]]);
const bindCheck = createBindCheck();
afterAll(() => bindCheck.close());

async function refusal(sql: string, expectedColumns?: number): Promise<AppError> {
  const error = await bindCheck.confirm(catalogue, sql, expectedColumns).then(() => undefined, (thrown: unknown) => thrown);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe('binding SQL to the catalogue before it runs', () => {
  it('a query that fits the columns and types passes, with its output columns and their types', async () => {
    await expect(bindCheck.confirm(catalogue, 'SELECT town, sum(capital) AS capital FROM firms GROUP BY town', 2)).resolves.toEqual([
      { name: 'town', type: 'VARCHAR' },
      { name: 'capital', type: 'DECIMAL(38,2)' },
    ]);
  });

  it('a column neither grouped nor aggregated is BIND_ERROR naming it, without advice to use ANY_VALUE', async () => {
    const error = await refusal('SELECT town, founded, count(*) FROM firms GROUP BY town');
    expect(error.code).toBe('BIND_ERROR');
    expect(error.message).toContain('column "founded" must appear in the GROUP BY clause');
    expect(error.message).not.toMatch(/ANY_VALUE|LINE 1|\n/);
  });

  it('a sum of a text column is BIND_ERROR naming the types, without the list of candidate functions', async () => {
    const error = await refusal('SELECT town, sum(town) FROM firms GROUP BY town');
    expect(error.code).toBe('BIND_ERROR');
    expect(error.message).toContain("sum(VARCHAR)");
    expect(error.message).not.toContain('Candidate');
  });

  it('a date compared with a number is BIND_ERROR', async () => {
    expect((await refusal('SELECT town, count(*) FROM firms WHERE founded > 5 GROUP BY town')).code).toBe('BIND_ERROR');
  });

  it('a count of output columns other than the analyser found is refused as a query read two ways', async () => {
    const error = await refusal('SELECT town, count(*) FROM firms GROUP BY town', 3);
    expect(error.code).toBe('UNSUPPORTED_QUERY_SHAPE');
  });

  it('a changed catalogue is bound against its own columns', async () => {
    const widened = new Map([[firms.id, { ...firms, columns: [...firms.columns, { name: 'employees', class: 'sensitive' as const, type: 'INTEGER' }] }]]);
    await expect(bindCheck.confirm(widened, 'SELECT town, sum(employees) AS employees FROM firms GROUP BY town', 2)).resolves.toEqual([
      { name: 'town', type: 'VARCHAR' },
      { name: 'employees', type: 'HUGEINT' },
    ]);
    expect((await refusal('SELECT town, sum(employees) FROM firms GROUP BY town')).code).toBe('BIND_ERROR');
  });

  it("a dataset whose type DuckDB refuses leaves other datasets' jobs binding", async () => {
    const broken = { ...firms, id: 'broken', columns: [{ name: 'x', class: 'attribute' as const, type: 'DECIMAL(50,2)' }] };
    const withBroken = new Map([[firms.id, firms], [broken.id, broken]]);
    await expect(bindCheck.confirm(withBroken, 'SELECT town, count(*) AS n FROM firms GROUP BY town', 2)).resolves.toHaveLength(2);
  });

  it('the binder cannot read files: its instance is hardened like the sandbox', async () => {
    const error = await refusal("SELECT count(*) FROM read_csv('/etc/passwd')");
    expect(error.code).toBe('BIND_ERROR');
    expect(error.message).not.toContain('root');
  });

  it('errors other than binding, catalogue, conversion and input errors get a generic message', () => {
    expect(binderMessage('Out of Memory Error: could not allocate block of size 256 MiB (/tmp/x)')).toBe('DuckDB could not bind the SQL to the datasets');
    expect(binderMessage('Binder Error: Referenced column "x" not found\n\nLINE 1: SELECT x')).toBe('Referenced column "x" not found');
  });
});
