import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSnapshotStore } from '../../src/domain-store/snapshot-store.js';

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-staging-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('the staging sweep', () => {
  it('removes staged files older than an hour and keeps younger ones, which may still be in use', () => {
    const store = createSnapshotStore(dataDir);
    const stale = store.stagingPath('.csv');
    const fresh = store.stagingPath('.csv');
    fs.writeFileSync(stale, 'left by an export nobody read');
    fs.writeFileSync(fresh, 'being written now');
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    fs.utimesSync(stale, twoHoursAgo, twoHoursAgo);
    store.clearStaging();
    expect(fs.existsSync(stale)).toBe(false);
    expect(fs.existsSync(fresh)).toBe(true);
  });
});
