import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPlatform, type TestPlatform } from '../support/test-platform.js';

let t: TestPlatform;
beforeAll(async () => {
  t = await createTestPlatform({ demo: true });
});
afterAll(() => t?.close());

/** Another API process sharing the database changes the catalogue with plain SQL; this one must notice. */
describe('the in-memory analysis catalogue', () => {
  it('sees a grade changed outside this process on its next check', async () => {
    expect((await t.platform.analysisCatalogue()).datasets.get('enterprises')?.grade).toBe('L2');
    await t.platform.controlPlane.executeSql(`UPDATE datasets SET grade = 'L3' WHERE id = 'enterprises'`);
    expect((await t.platform.analysisCatalogue()).datasets.get('enterprises')?.grade).toBe('L3');
    await t.platform.controlPlane.executeSql(`UPDATE datasets SET grade = 'L2' WHERE id = 'enterprises'`);
  });

  it('sees a version recorded outside this process, and its removal', async () => {
    const before = (await t.platform.analysisCatalogue()).latestVersions.get('enterprises');
    const [latest] = (await t.platform.controlPlane.executeSql(`SELECT * FROM dataset_versions WHERE dataset_id = 'enterprises' ORDER BY version_number DESC LIMIT 1`)).rows as Array<Record<string, unknown>>;
    await t.platform.controlPlane.executeSql(
      `INSERT INTO dataset_versions (id, dataset_id, version_number, content_hash, source_hash, source_format, row_count, byte_size, catalogue_version) VALUES ('v-outside', 'enterprises', $1, 'hash-outside', 'source-outside', 'csv', 1, 1, $2)`,
      [Number(latest!.version_number) + 1, latest!.catalogue_version],
    );
    expect((await t.platform.analysisCatalogue()).latestVersions.get('enterprises')).toBe('hash-outside');
    await t.platform.controlPlane.executeSql(`DELETE FROM dataset_versions WHERE id = 'v-outside'`);
    expect((await t.platform.analysisCatalogue()).latestVersions.get('enterprises')).toBe(before);
  });

  it('is not re-read while nothing changed', async () => {
    const first = await t.platform.analysisCatalogue();
    expect(await t.platform.analysisCatalogue()).toBe(first);
  });
});
