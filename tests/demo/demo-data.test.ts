import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { beforeAll, describe, expect, it } from 'vitest';
import { sha256File } from '../../src/domain-store/snapshot-store.js';
import { demoPeriod, generateDemoData, type DemoFile } from '../../src/demo/generate-demo-data.js';
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

describe('the period the demo covers', () => {
  it('ends the readings with the last whole month before its last day', () => {
    expect(demoPeriod('2026-11-27', 24)).toEqual({ firstMonth: '2024-11-01', lastMonth: '2026-10-01', lastDay: '2026-11-27', days: 757 });
  });

  it('ends the readings with the month its last day closes', () => {
    expect(demoPeriod('2024-12-31', 24)).toEqual({ firstMonth: '2023-01-01', lastMonth: '2024-12-01', lastDay: '2024-12-31', days: 731 });
    expect(demoPeriod('2025-03-01', 24).lastMonth).toBe('2025-02-01');
  });

  it('refuses a day that does not exist', () => {
    expect(() => demoPeriod('2025-02-30', 24)).toThrow(/not a date/);
  });
});

describe('generated demo data (small scale)', () => {
  let files: DemoFile[];
  let query: (sql: string) => Promise<unknown[][]>;
  const scale = 0.005;
  beforeAll(async () => {
    files = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale, lastDay: '2024-12-31' });
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    query = async (sql) => (await connection.runAndReadAll(sql)).getRows();
  });
  const fileOf = (id: string) => files.find((file) => file.datasetId === id)!.file;

  it('is the same for the same seed', async () => {
    const again = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale, lastDay: '2024-12-31' });
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

  it('covers the period it is asked for: readings to the last whole month, trips to the last day', async () => {
    const recent = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale, lastDay: '2026-11-27' });
    const file = (id: string) => recent.find((entry) => entry.datasetId === id)!.file;
    const months = await query(`SELECT min(month)::VARCHAR, max(month)::VARCHAR FROM '${file('power_readings')}'`);
    expect(months).toEqual([['2024-11-01', '2026-10-01']]);
    const [earliest, latest] = (await query(`SELECT min(boarded_at)::DATE::VARCHAR, max(boarded_at)::DATE::VARCHAR FROM '${file('transit_trips')}'`))[0] as string[];
    expect(earliest! >= '2024-11-01').toBe(true);
    expect(latest! > '2026-10-31' && latest! <= '2026-11-28').toBe(true);
  });

  it('peaks household power use in summer and winter whatever month it starts in', async () => {
    const peaks = async (files: DemoFile[]) =>
      ((await query(`
        SELECT month(month)::INTEGER FROM '${files.find((entry) => entry.datasetId === 'power_readings')!.file}'
        WHERE customer_type = 'household' GROUP BY month(month) ORDER BY avg(kwh) DESC LIMIT 3`)) as number[][]).map((row) => row[0]);
    const shifted = await generateDemoData(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-demo-')), { seed: 'test-seed', scale, lastDay: '2026-05-31' });
    // The seasonal curve peaks between January and February and between July and August.
    for (const months of [await peaks(files), await peaks(shifted)]) expect(months.every((month) => [1, 2, 7, 8].includes(month!))).toBe(true);
  });
});
