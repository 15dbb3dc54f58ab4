import fs from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDataset, registerDataset } from '../../src/catalog/catalogue.js';
import { passesLuhn } from '../../src/catalog/identity-numbers.js';
import { datasetRegistrationSchema } from '../../src/catalog/registration.js';
import { datasetVersions, institutions } from '../../src/db/schema.js';
import { loadDatasetVersion } from '../../src/domain-store/load-version.js';
import { sha256File, type CsvEncoding } from '../../src/domain-store/snapshot-store.js';
import { AppError } from '../../src/errors/app-error.js';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
let files: string;
beforeAll(async () => {
  t = await createTestPlatform();
  files = fs.mkdtempSync(path.join(t.dataDir, 'files-'));
  await t.platform.db.insert(institutions).values({ id: 'water-utility', name: 'Water', nameZh: '自来水公司', kind: 'utility' });
  await registerDataset(
    t.platform.db,
    datasetRegistrationSchema.parse({
      id: 'meters',
      title: 'Meters',
      titleZh: '水表',
      description: 'Test meters.',
      category: 'utilities',
      grade: 'L3',
      sharingType: 'conditional',
      sharingBasis: 'test',
      legalBasis: 'test',
      updateFrequency: 'monthly',
      privacyUnit: 'meter_id',
      columns: [
        { name: 'meter_id', type: 'VARCHAR', class: 'direct_identifier', description: 'Meter' },
        { name: 'reading', type: 'INTEGER', class: 'sensitive', description: 'Reading' },
        { name: 'read_on', type: 'DATE', class: 'attribute', description: 'Date', nullable: true },
      ],
    }),
    'water-utility',
    'test',
    t.platform.clock(),
  );
});
afterAll(() => t?.close());

/** A dataset of the water utility with these columns (the privacy unit first), registered for one test. */
async function registerWith(id: string, columns: Array<{ name: string; class: string }>, openData = false) {
  await registerDataset(
    t.platform.db,
    datasetRegistrationSchema.parse({
      id,
      title: id,
      titleZh: id,
      description: 'Test.',
      category: 'utilities',
      grade: openData ? 'L1' : 'L3',
      openData,
      sharingType: openData ? 'unconditional' : 'conditional',
      sharingBasis: 'test',
      legalBasis: 'test',
      updateFrequency: 'monthly',
      privacyUnit: columns[0]!.name,
      columns: columns.map((column, index) => ({ ...column, type: 'VARCHAR', description: column.name, nullable: index > 0 })),
    }),
    'water-utility',
    'test',
    t.platform.clock(),
  );
  return (await findDataset(t.platform.db, id))!;
}

function file(name: string, content: string | Buffer): string {
  const target = path.join(files, name);
  fs.writeFileSync(target, content);
  return target;
}

/** Loads a CSV written here into a dataset registered by the test (as a source delivers one). */
const loadCsvInto = (dataset: Awaited<ReturnType<typeof registerWith>>, name: string, content: string) =>
  loadDatasetVersion({ db: t.platform.db, store: t.platform.store }, { dataset, file: file(name, content), format: 'csv', loadedBy: 'test' });

const load = async (source: string, format: 'csv' | 'parquet' = 'csv', encoding?: CsvEncoding) =>
  loadDatasetVersion(
    { db: t.platform.db, store: t.platform.store },
    { dataset: (await findDataset(t.platform.db, 'meters'))!, file: source, format, loadedBy: 'test', encoding },
  );

const failure = async (source: string, format: 'csv' | 'parquet' = 'csv', encoding?: CsvEncoding) => {
  const error = await load(source, format, encoding).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
};

/** Rows of a loaded version's snapshot, read as only a test may. */
async function snapshotRows(contentHash: string, sql: string): Promise<unknown[][]> {
  const instance = await DuckDBInstance.create(t.platform.store.snapshotPath('meters', contentHash), { access_mode: 'READ_ONLY' });
  try {
    const connection = await instance.connect();
    return (await connection.runAndReadAll(sql)).getRows();
  } finally {
    instance.closeSync();
  }
}

const snapshotFiles = () => (fs.existsSync(path.join(t.platform.store.root, 'meters')) ? fs.readdirSync(path.join(t.platform.store.root, 'meters')) : []);
const versionCount = async () => (await t.platform.db.select().from(datasetVersions).where(eq(datasetVersions.datasetId, 'meters'))).length;

describe('loading a file as a dataset version', () => {
  it('creates version 1 named by the hash of its snapshot, with the row count', async () => {
    const version = await load(file('good.csv', 'meter_id,reading,read_on\nM1,10,2024-01-31\nM2,20,\n"M,3",30,2024-02-29\n'));
    expect(version).toMatchObject({ versionNumber: 1, rowCount: 3, sourceFormat: 'csv' });
    const snapshot = t.platform.store.snapshotPath('meters', version.contentHash);
    expect(await sha256File(snapshot)).toBe(version.contentHash);
    expect(fs.statSync(snapshot).mode & 0o222).toBe(0);
  });

  it('stores the values with their registered types', async () => {
    const version = await load(file('typed.csv', 'meter_id,reading,read_on\nM9,7,2024-03-01\n'));
    const described = (await snapshotRows(version.contentHash, 'DESCRIBE data')).map((row) => [row[0], row[1]]);
    expect(described).toEqual([
      ['meter_id', 'VARCHAR'],
      ['reading', 'INTEGER'],
      ['read_on', 'DATE'],
    ]);
  });

  it('accepts a Parquet file with the same columns in another order', async () => {
    const parquet = path.join(files, 'good.parquet');
    const instance = await DuckDBInstance.create(':memory:');
    const connection = await instance.connect();
    await connection.run(`COPY (SELECT DATE '2024-01-01' AS read_on, 5 AS reading, 'P1' AS meter_id) TO '${parquet}' (FORMAT parquet)`);
    connection.closeSync();
    instance.closeSync();
    const version = await load(parquet, 'parquet');
    expect(version.rowCount).toBe(1);
  });

  it('reads a CSV declared GB 18030 (GBK) as the same text, four-byte characters included', async () => {
    // "水表甲𠀀" in GB 18030: three GBK characters and one four-byte sequence beyond GBK.
    const meter = Buffer.from('cbaeb1edbcd795328236', 'hex');
    const source = file('gbk.csv', Buffer.concat([Buffer.from('meter_id,reading,read_on\n'), meter, Buffer.from(',11,2024-04-01\n')]));
    const version = await load(source, 'csv', 'gb18030');
    const rows = await snapshotRows(version.contentHash, 'SELECT meter_id, reading FROM data');
    expect(rows).toEqual([['水表甲𠀀', 11]]);
    // The source hash is of the bytes as delivered, not of the UTF-8 copy DuckDB read.
    expect(version.sourceHash).toBe(await sha256File(source));
  });

  it("reads a file that starts with a UTF-8 byte order mark as UTF-8 even when declared GB 18030 (Excel's CSV UTF-8)", async () => {
    const source = file('excel-utf8.csv', Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('meter_id,reading,read_on\n水表乙,12,2024-05-01\n')]));
    const version = await load(source, 'csv', 'gb18030');
    const rows = await snapshotRows(version.contentHash, 'SELECT meter_id, reading FROM data');
    expect(rows).toEqual([['水表乙', 12]]);
  });

  it('refuses the same source file twice with VERSION_EXISTS', async () => {
    const content = 'meter_id,reading,read_on\nD1,1,2024-01-01\n';
    await load(file('once.csv', content));
    const error = await failure(file('twice.csv', content));
    expect(error.code).toBe('VERSION_EXISTS');
  });
});

describe('a file that does not match the registered schema is refused and leaves no version', () => {
  const cases = [
    { name: 'a missing column', content: 'meter_id,reading\nM1,10\n', expect: { path: 'read_on', problem: 'registered column missing from the file' } },
    { name: 'an extra column', content: 'meter_id,reading,read_on,owner\nM1,10,2024-01-01,x\n', expect: { path: 'owner', problem: 'column not in the registered schema' } },
    { name: 'a value of the wrong type', content: 'meter_id,reading,read_on\nM1,10,2024-01-01\nM2,SECRET-VALUE-42,2024-01-01\n', expect: { path: 'reading', problem: '1 value(s) are not INTEGER (first at data row 2)' } },
    { name: 'an impossible date', content: 'meter_id,reading,read_on\nM1,10,2024-02-30\n', expect: { path: 'read_on', problem: '1 value(s) are not DATE (first at data row 1)' } },
    { name: 'an empty value where none is allowed', content: 'meter_id,reading,read_on\n,10,2024-01-01\n', expect: { path: 'meter_id', problem: '1 empty value(s) in a column that may not be empty (first at data row 1)' } },
  ];

  it.each(cases)('$name', async ({ content, expect: detail }) => {
    const before = { files: snapshotFiles(), versions: await versionCount() };
    const error = await failure(file('bad.csv', content));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.details).toContainEqual(detail);
    expect({ files: snapshotFiles(), versions: await versionCount() }).toEqual(before);
  });

  it('a file that is not UTF-8', async () => {
    const before = await versionCount();
    const error = await failure(file('latin1.csv', Buffer.concat([Buffer.from('meter_id,reading,read_on\nM'), Buffer.from([0xe9, 0xff]), Buffer.from(',1,2024-01-01\n')])));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.message).toMatch(/^the file is not UTF-8 encoded; .*charset gb18030/);
    expect(await versionCount()).toBe(before);
  });

  it('a file declared GB 18030 with bytes GB 18030 does not define, leaving nothing in staging', async () => {
    const before = await versionCount();
    // 0x81 0x20: a lead byte followed by a byte no GB 18030 sequence continues with.
    const error = await failure(file('broken-gbk.csv', Buffer.concat([Buffer.from('meter_id,reading,read_on\nM'), Buffer.from([0x81, 0x20]), Buffer.from(',1,2024-01-01\n')])), 'csv', 'gb18030');
    expect(error).toMatchObject({ code: 'SCHEMA_MISMATCH', message: expect.stringMatching(/^the file is not GB 18030 encoded/) });
    expect(await versionCount()).toBe(before);
    const staging = path.join(t.platform.store.root, '.staging');
    expect(fs.existsSync(staging) ? fs.readdirSync(staging) : []).toEqual([]);
  });

  it('a line with too many fields', async () => {
    const error = await failure(file('ragged.csv', 'meter_id,reading,read_on\nM1,10,2024-01-01\nM2,20,2024-01-01,extra\n'));
    expect(error.code).toBe('SCHEMA_MISMATCH');
    expect(error.details[0]!.path).toBe('line 3');
  });

  it('a file with no data rows', async () => {
    const error = await failure(file('empty.csv', 'meter_id,reading,read_on\n'));
    expect(error).toMatchObject({ code: 'SCHEMA_MISMATCH', message: 'the file holds no data rows' });
  });

  it('a file that is not Parquet at all', async () => {
    const error = await failure(file('fake.parquet', 'this is not parquet'), 'parquet');
    expect(error.code).toBe('FILE_UNREADABLE');
  });

  it('never repeats the offending value in the error', async () => {
    const error = await failure(file('secret.csv', 'meter_id,reading,read_on\nM1,TOP-SECRET-991,2024-01-01\n'));
    expect(JSON.stringify(error.toBody())).not.toContain('TOP-SECRET-991');
  });

  it('a column of mobile numbers classed an attribute, naming the column and the count but no number', async () => {
    const dataset = await registerWith('meter_contacts', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'contact', class: 'attribute' },
      { name: 'owner_id', class: 'direct_identifier' },
    ]);
    const rows = Array.from({ length: 40 }, (_, i) => `M${i},+86 139-1234-${String(5000 + i)},11010519491231${String(1000 + i).slice(1)}X`);
    const refused = await loadCsvInto(dataset, 'contacts.csv', `meter_id,contact,owner_id\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'contact', problem: expect.stringMatching(/^40 of 40 value\(s\) look like mobile numbers, but the column is classed attribute: class it a direct identifier/) }]);
    expect(JSON.stringify((refused as AppError).toBody())).not.toContain('1234');
    expect((await t.platform.db.select().from(datasetVersions).where(eq(datasetVersions.datasetId, 'meter_contacts'))).length).toBe(0);
  });

  it('resident ID numbers and e-mail addresses in a sensitive column; a stray match among codes is let through', async () => {
    const dataset = await registerWith('meter_notes', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'note', class: 'sensitive' },
      { name: 'model', class: 'attribute' },
    ]);
    // Every note is an ID number or an address; one model code in 200 happens to look like a mobile number.
    const rows = Array.from({ length: 200 }, (_, i) => `M${i},${i % 2 ? `11010519800101${String(100 + (i % 900)).padStart(3, '0')}X` : `user${i}@example.cn`},${i === 7 ? '13800000000' : `WM-${i}`}`);
    const refused = await loadCsvInto(dataset, 'notes.csv', `meter_id,note,model\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details.map((detail) => `${detail.path}: ${detail.problem.split(',')[0]}`)).toEqual([
      'note: 100 of 200 value(s) look like resident ID numbers',
      'note: 100 of 200 value(s) look like e-mail addresses',
    ]);
  });

  it('bank card numbers in a sensitive column, while meter numbers of the same shape, a tenth passing the card check by chance, are let through', async () => {
    const dataset = await registerWith('meter_payments', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'card', class: 'sensitive' },
      { name: 'meter_no', class: 'attribute' },
    ]);
    // Card numbers with their Luhn check digit, half written in groups of four; meter numbers counted up.
    const withCheckDigit = (body: string) => body + [...'0123456789'].find((digit) => passesLuhn(body + digit))!;
    const rows = Array.from({ length: 100 }, (_, i) => {
      const card = withCheckDigit(`621700${String(1000000000 + i * 7919).slice(1)}`);
      return `M${i},${i % 2 ? card.replace(/(\d{4})(?=\d)/g, '$1 ') : card},${6217000000000000 + i}`;
    });
    const refused = await loadCsvInto(dataset, 'payments.csv', `meter_id,card,meter_no\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'card', problem: expect.stringMatching(/^100 of 100 value\(s\) look like bank card numbers/) }]);
  });

  it('a short column of card numbers is refused too: only names need many different values', async () => {
    const dataset = await registerWith('meter_cards_short', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'card', class: 'attribute' },
    ]);
    const withCheckDigit = (body: string) => body + [...'0123456789'].find((digit) => passesLuhn(body + digit))!;
    const rows = Array.from({ length: 8 }, (_, i) => `M${i},${withCheckDigit(`621700${String(1000000000 + i * 7919).slice(1)}`)}`);
    const refused = await loadCsvInto(dataset, 'cards.csv', `meter_id,card\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'card', problem: expect.stringMatching(/^8 of 8 value\(s\) look like bank card numbers/) }]);
  });

  it('passport numbers in an attribute column; a column with a few codes of that shape is let through', async () => {
    const dataset = await registerWith('meter_travellers', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'passport', class: 'attribute' },
      { name: 'model', class: 'attribute' },
    ]);
    // Passports of each form; the model column has one code in ten shaped like one.
    const rows = Array.from({ length: 60 }, (_, i) => `M${i},${['E', 'EA', 'G'][i % 3]}${String(1234567 + i).padStart(i % 3 === 1 ? 7 : 8, '0')},${i % 10 ? `WM-${i}` : `E${String(10000000 + i)}`}`);
    const refused = await loadCsvInto(dataset, 'travellers.csv', `meter_id,passport,model\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'passport', problem: expect.stringMatching(/^60 of 60 value\(s\) look like passport or travel permit numbers/) }]);
  });

  it('personal names in an attribute column, written with common and compound surnames', async () => {
    const dataset = await registerWith('meter_holders', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'holder', class: 'attribute' },
    ]);
    const given = ['伟', '芳', '秀英', '建国', '丽', '强', '婷婷', '志明'];
    const rows = Array.from({ length: 80 }, (_, i) => `M${i},${['王', '李', '张', '欧阳', '陈', '诸葛'][i % 6]}${given[Math.floor(i / 6) % given.length]}`);
    const refused = await loadCsvInto(dataset, 'holders.csv', `meter_id,holder\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'holder', problem: expect.stringMatching(/^80 of 80 value\(s\) look like personal names/) }]);
  });

  it('personal names in pinyin in an attribute column, surname first or last, in any case', async () => {
    const dataset = await registerWith('meter_holders_pinyin', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'holder', class: 'attribute' },
    ]);
    const given = ['Wei', 'Fang', 'Xiuying', 'Jianguo', 'Li', 'Qiang', 'Tingting', 'Zhi-ming'];
    const surnames = ['WANG', 'Li', 'zhang', 'Ouyang', 'Chen', 'Zhuge'];
    const rows = Array.from({ length: 80 }, (_, i) => {
      const [surname, name] = [surnames[i % 6]!, given[Math.floor(i / 6) % given.length]!];
      return `M${i},${i % 4 === 3 ? `${name} ${surname}` : `${surname} ${name}`}`;
    });
    const refused = await loadCsvInto(dataset, 'holders.csv', `meter_id,holder\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'holder', problem: expect.stringMatching(/^80 of 80 value\(s\) look like personal names in pinyin/) }]);
  });

  it('English words, places in pinyin and a handful of pinyin names are not taken for a register of people', async () => {
    const dataset = await registerWith('meter_sites', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'site', class: 'attribute' },
      { name: 'district', class: 'attribute' },
      { name: 'inspector', class: 'attribute' },
    ]);
    const sites = Array.from({ length: 60 }, (_, i) => `${['Harbour', 'Lingang', 'Nanhui', 'Dishui Lake', 'Ocean Park'][i % 5]} Site ${i}`);
    const rows = Array.from({ length: 200 }, (_, i) => `M${i},${sites[i % sites.length]},${['Nicheng', 'Shuyuan', 'Wanxiang', 'Luchaogang'][i % 4]},${['Wang Wei', 'Li Fang', 'Zhang Qiang', 'Liu Yang', 'Chen Jing'][i % 5]}`);
    await expect(loadCsvInto(dataset, 'sites.csv', `meter_id,site,district,inspector\n${rows.join('\n')}\n`)).resolves.toBeDefined();
  });

  it('place and organisation names that begin like a surname, and a handful of names, are not taken for a register of people', async () => {
    const dataset = await registerWith('meter_places', [
      { name: 'meter_id', class: 'direct_identifier' },
      { name: 'town', class: 'attribute' },
      { name: 'road', class: 'attribute' },
      { name: 'inspector', class: 'attribute' },
    ]);
    // Towns and roads of the form surname + two characters, each ending as places do, many of them; five inspectors.
    const places = ['万祥镇', '高桥镇', '张江镇', '金桥镇', '周浦镇', '江湾镇', '林海村', '王家村', '杨浦区', '徐汇区'];
    const roads = Array.from({ length: 40 }, (_, i) => `${['高', '张', '黄', '陈', '金'][i % 5]}${['科', '东', '江', '海', '新', '华', '兴', '安'][Math.floor(i / 5)]}路`);
    const rows = Array.from({ length: 200 }, (_, i) => `M${i},${places[i % places.length]},${roads[i % roads.length]},${['王伟', '李芳', '张强', '刘洋', '陈静'][i % 5]}`);
    await expect(loadCsvInto(dataset, 'places.csv', `meter_id,town,road,inspector\n${rows.join('\n')}\n`)).resolves.toBeDefined();
  });

  it('open data with even one personal identifier, whatever its class', async () => {
    const dataset = await registerWith('open_hydrants', [
      { name: 'hydrant_id', class: 'attribute' },
      { name: 'keeper_phone', class: 'direct_identifier' },
    ], true);
    const rows = Array.from({ length: 300 }, (_, i) => `H${i},${i === 250 ? '13912345678' : '021-5555-0000'}`);
    const refused = await loadCsvInto(dataset, 'hydrants.csv', `hydrant_id,keeper_phone\n${rows.join('\n')}\n`).catch((error: unknown) => error as AppError);
    expect(refused).toMatchObject({ code: 'COLUMN_CLASS_SUSPECT' });
    expect((refused as AppError).details).toEqual([{ path: 'keeper_phone', problem: '1 value(s) look like mobile numbers: open data is published row by row, so personal identifiers may not be in it' }]);
  });

  it('leaves nothing in staging', async () => {
    await failure(file('bad2.csv', 'meter_id,reading,read_on\nM1,x,2024-01-01\n'));
    const staging = path.join(t.platform.store.root, '.staging');
    expect(fs.existsSync(staging) ? fs.readdirSync(staging) : []).toEqual([]);
  });
});
