import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { createSyntheticTrial, type TrialDataset } from '../../src/analysis/synthetic-trial.js';
import type { AppError } from '../../src/errors/app-error.js';

const firms: TrialDataset = {
  id: 'firms',
  privacyUnit: 'code',
  uniqueKey: ['code'],
  columns: [
    { name: 'code', type: 'VARCHAR', class: 'direct_identifier', nullable: false, description: 'credit code' },
    { name: 'town', type: 'VARCHAR', class: 'attribute', nullable: false, description: 'town', publicDomain: ['南汇新城镇', '芦潮港', '万祥镇'] },
    { name: 'capital', type: 'DECIMAL(18,2)', class: 'sensitive', nullable: false, description: 'capital', bounds: { min: 100, max: 200 } },
    { name: 'founded', type: 'DATE', class: 'attribute', nullable: true, description: 'founded on' },
    { name: 'active', type: 'BOOLEAN', class: 'attribute', nullable: false, description: 'active' },
  ],
};
const readings: TrialDataset = {
  id: 'readings',
  privacyUnit: 'account',
  columns: [
    { name: 'account', type: 'VARCHAR', class: 'direct_identifier', nullable: false, description: 'account' },
    { name: 'code', type: 'VARCHAR', class: 'direct_identifier', nullable: true, description: 'credit code of the firm' },
    { name: 'kwh', type: 'DOUBLE', class: 'sensitive', nullable: false, description: 'use' },
  ],
};

const refusal = (promise: Promise<unknown>) => promise.then(() => undefined, (error: AppError) => error);

describe('trial runs over synthetic data', () => {
  it('fill each table with the set number of rows, keys unique where the catalogue says so', async () => {
    const trial = createSyntheticTrial({ rowsPerDataset: 300 });
    const result = await trial.run([firms], 'SELECT count(*) AS rows, count(DISTINCT code) AS codes FROM firms');
    expect(result.rows).toEqual([[300, 300]]);
    expect(result.rowsPerDataset).toBe(300);
  });

  it('draw categories from the declared public domain and numbers within the declared bounds', async () => {
    const trial = createSyntheticTrial();
    const towns = await trial.run([firms], 'SELECT DISTINCT town FROM firms ORDER BY town');
    expect(towns.rows.map(([town]) => town).sort()).toEqual(['万祥镇', '南汇新城镇', '芦潮港'].sort());
    const capital = await trial.run([firms], 'SELECT min(capital) >= 100 AND max(capital) <= 200 AS within FROM firms');
    expect(capital.rows).toEqual([[true]]);
  });

  it('leave some values of a nullable column empty and none of the others', async () => {
    const trial = createSyntheticTrial();
    const result = await trial.run([firms], 'SELECT count(*) FILTER (WHERE founded IS NULL) > 0, count(*) FILTER (WHERE active IS NULL OR town IS NULL) FROM firms');
    expect(result.rows).toEqual([[true, 0]]);
  });

  it('join same-named identifiers across datasets', async () => {
    const trial = createSyntheticTrial();
    const result = await trial.run([firms, readings], 'SELECT count(*) AS joined FROM readings r JOIN firms f ON r.code = f.code');
    expect(result.rows[0]![0]).toBeGreaterThan(0);
  });

  it('join a column to the one its entry declares it references, whatever each is called', async () => {
    const owners: TrialDataset = {
      id: 'owners',
      privacyUnit: 'owner_id',
      columns: [
        { name: 'owner_id', type: 'VARCHAR', class: 'direct_identifier', nullable: false, description: 'owner' },
        { name: 'firm_code', type: 'VARCHAR', class: 'direct_identifier', nullable: false, description: 'credit code of the owned firm' },
      ],
    };
    const sql = 'SELECT count(*) AS joined FROM owners o JOIN firms f ON o.firm_code = f.code';
    const trial = createSyntheticTrial();
    expect((await trial.run([firms, owners], sql)).rows).toEqual([[0]]);
    const declared = { ...owners, qualityRules: [{ rule: 'reference' as const, column: 'firm_code', dataset: 'firms', references: 'code', tolerance: 0 }] };
    // Every owner row names a synthetic firm, as a register that passes its reference rule does.
    expect((await trial.run([firms, declared], sql)).rows).toEqual([[500]]);
  });

  it('return the output columns with their types, the first rows and how many there were', async () => {
    const trial = createSyntheticTrial({ rowLimit: 10 });
    const result = await trial.run([readings], 'SELECT account, kwh FROM readings');
    expect(result.columns).toEqual([
      { name: 'account', type: 'VARCHAR' },
      { name: 'kwh', type: 'DOUBLE' },
    ]);
    expect(result.rows).toHaveLength(10);
    expect(result.rowCount).toBe(500);
  });

  it('show DuckDB\'s own message when the SQL fails over synthetic values', async () => {
    const error = await refusal(createSyntheticTrial().run([firms], 'SELECT CAST(town AS INTEGER) FROM firms'));
    expect(error).toMatchObject({ code: 'TRIAL_FAILED', status: 422 });
    expect(error!.message).toMatch(/^the SQL failed over synthetic data: Conversion Error: .*(南汇新城镇|芦潮港|万祥镇)/);
  });

  it('stop a trial at its time limit, and run the next one', async () => {
    const trial = createSyntheticTrial({ wallMilliseconds: 300 });
    const error = await refusal(trial.run([firms], 'SELECT count(*) FROM firms a, firms b, firms c, firms d, firms e'));
    expect(error).toMatchObject({ code: 'TRIAL_TIME_LIMIT', status: 422 });
    await expect(trial.run([firms], 'SELECT count(*) FROM firms')).resolves.toMatchObject({ rows: [[500]] });
  });

  it('refuse more trials than may wait, saying when to retry', async () => {
    const trial = createSyntheticTrial({ wallMilliseconds: 500, maxWaiting: 1 });
    const slow = refusal(trial.run([firms], 'SELECT count(*) FROM firms a, firms b, firms c, firms d, firms e'));
    const busy = await refusal(trial.run([firms], 'SELECT 1'));
    expect(busy).toMatchObject({ code: 'TRIAL_BUSY', status: 429, retryAfterSeconds: 1 });
    expect(await slow).toMatchObject({ code: 'TRIAL_TIME_LIMIT' });
  });

  it('read no file and write none: the instance is hardened before the SQL runs', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-trial-'));
    const secret = path.join(directory, 'secret.csv');
    fs.writeFileSync(secret, 'a\n1\n');
    const trial = createSyntheticTrial();
    expect(await refusal(trial.run([firms], `SELECT * FROM read_csv('${secret}')`))).toMatchObject({ code: 'TRIAL_FAILED' });
    expect(await refusal(trial.run([firms], `COPY firms TO '${path.join(directory, 'out.csv')}'`))).toMatchObject({ code: expect.stringMatching(/^(TRIAL_FAILED|NOT_SELECT)$/) });
    expect(fs.readdirSync(directory)).toEqual(['secret.csv']);
    fs.rmSync(directory, { recursive: true });
  });
});
