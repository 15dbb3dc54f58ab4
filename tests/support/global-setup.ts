import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrateControlPlane, openControlPlane } from '../../src/db/connect.js';

/**
 * A fresh PGlite takes ~5 s to start; loading a dump of an already migrated one takes under 1 s. So the
 * migrated template is built once per run and each test file starts from it. On PostgreSQL (DATABASE_URL set)
 * each test file creates its own database instead (see test-platform.ts).
 */
export async function setup({ provide }: { provide: (key: string, value: unknown) => void }) {
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-test-'));
  let templatePath = '';
  if (!process.env.DATABASE_URL) {
    const template = await openControlPlane({ kind: 'pglite' });
    await migrateControlPlane(template);
    const dump = await dumpPglite(template);
    templatePath = path.join(directory, 'control-plane-template.tar');
    fs.writeFileSync(templatePath, Buffer.from(await dump.arrayBuffer()));
    await template.close();
  }
  provide('pgliteTemplate', templatePath);
  provide('testRoot', directory);
  return () => fs.rmSync(directory, { recursive: true, force: true });
}

async function dumpPglite(controlPlane: Awaited<ReturnType<typeof openControlPlane>>): Promise<Blob> {
  if (!controlPlane.dumpDataDir) throw new Error('not a PGlite control plane');
  return controlPlane.dumpDataDir();
}

declare module 'vitest' {
  export interface ProvidedContext {
    pgliteTemplate: string;
    testRoot: string;
  }
}
