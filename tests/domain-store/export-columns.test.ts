import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportColumnsToCsv } from '../../src/domain-store/export-columns.js';
import { createSnapshotStore } from '../../src/domain-store/snapshot-store.js';

const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-export-'));
const store = createSnapshotStore(directory);
const hash = 'a'.repeat(64);
const registered = [
  { name: 'name', type: 'VARCHAR' },
  { name: 'balance', type: 'DOUBLE' },
];

beforeAll(async () => {
  const file = store.snapshotPath('firms', hash);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const instance = await DuckDBInstance.create(file);
  const connection = await instance.connect();
  await connection.run("CREATE TABLE data AS SELECT * FROM (VALUES ('=HYPERLINK(\"http://x\")', -5.0), ('@SUM(A1)', 3.0), ('临港科技', 7.5)) AS t(name, balance)");
  connection.closeSync();
  instance.closeSync();
});
afterAll(() => fs.rmSync(directory, { recursive: true, force: true }));

const exported = async (options: { forSpreadsheet?: boolean } = {}) => {
  const { file, rowCount } = await exportColumnsToCsv(store, { id: 'firms', columns: registered }, hash, ['name', 'balance'], options);
  const text = fs.readFileSync(file, 'utf8');
  fs.rmSync(file);
  return { lines: text.trim().split('\n'), rowCount };
};

describe('exporting shared data as CSV', () => {
  it('writes values exactly as stored for systems', async () => {
    const { lines, rowCount } = await exported();
    expect(rowCount).toBe(3);
    expect(lines).toEqual(['name,balance', '"=HYPERLINK(""http://x"")",-5.0', '@SUM(A1),3.0', '临港科技,7.5']);
  });

  it('for a spreadsheet, defuses text that starts like a formula and leaves numbers alone', async () => {
    const { lines } = await exported({ forSpreadsheet: true });
    expect(lines).toEqual(['name,balance', '"\'=HYPERLINK(""http://x"")",-5.0', "'@SUM(A1),3.0", '临港科技,7.5']);
  });
});
