import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/domain-store/snapshot-store.js';
import { generateDemoData, type DemoFile } from '../../src/demo/generate-demo-data.js';
import { creditCodeCheckCharacter, isValidCreditCode, isValidResidentId, residentIdCheckCharacter } from '../../src/catalog/identity-numbers.js';

describe('check digits', () => {
  it('GB 11643: the standard example resident ID 11010519491231002X is valid', () => {
    expect(residentIdCheckCharacter('11010519491231002')).toBe('X');
    expect(isValidResidentId('11010519491231002X')).toBe(true);
    expect(isValidResidentId('110105194912310021')).toBe(false);
  });

  it('GB 32100: a published credit code is valid and a changed one is not', () => {
    expect(creditCodeCheckCharacter('91350100M000100Y4')).toBe('3');
    expect(isValidCreditCode('91350100M000100Y43')).toBe(true);
    expect(isValidCreditCode('91350100M000100Y44')).toBe(false);
  });
});

describe('generated demo data (small scale)', () => {
  let files: DemoFile[];
  let query: (sql: string) => Promise<unknown[][]>;
  const scale = 0.005;
  beforeAll(async () => {
    files = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale });
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    query = async (sql) => (await connection.runAndReadAll(sql)).getRows();
  });
  const fileOf = (id: string) => files.find((file) => file.datasetId === id)!.file;

  it('is the same for the same seed', async () => {
    const again = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale });
    for (const [index, file] of files.entries()) expect(await sha256File(again[index]!.file)).toBe(await sha256File(file.file));
  });

  it('gives every resident a valid, unique ID number', async () => {
    const ids = (await query(`SELECT resident_id FROM read_csv('${fileOf('residents')}', all_varchar = true)`)).map((row) => String(row[0]));
    expect(ids.length).toBe(1000);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.every(isValidResidentId)).toBe(true);
  });

  it('gives every enterprise a valid credit code and a legal representative who is a resident', async () => {
    const rows = await query(`
      SELECT e.uscc, r.resident_id IS NOT NULL FROM read_csv('${fileOf('enterprises')}', all_varchar = true) e
      LEFT JOIN read_csv('${fileOf('residents')}', all_varchar = true) r ON r.resident_id = e.legal_rep_id`);
    expect(rows.length).toBe(60);
    expect(rows.every((row) => isValidCreditCode(String(row[0])) && row[1] === true)).toBe(true);
  });

  it('has 24 months of readings per account with a few dominant enterprise consumers', async () => {
    const [months] = await query(`SELECT count(DISTINCT month), count(*) / count(DISTINCT account_id) FROM '${fileOf('power_readings')}'`);
    expect(months).toEqual([24n, 24]);
    // Skew: the top 5 % of enterprise accounts use a large share of enterprise power.
    const skew = (await query(`
      WITH totals AS (SELECT account_id, sum(kwh) AS kwh FROM '${fileOf('power_readings')}' WHERE customer_type = 'enterprise' GROUP BY 1),
           ranked AS (SELECT kwh, percent_rank() OVER (ORDER BY kwh DESC) AS r FROM totals)
      SELECT sum(kwh) FILTER (WHERE r < 0.05) / sum(kwh) FROM ranked`)) as number[][];
    expect(skew[0]![0]).toBeGreaterThan(0.2);
  });
});
