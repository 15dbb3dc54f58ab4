import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { drizzle as drizzlePostgres } from 'drizzle-orm/node-postgres';
import { migrate as migratePostgres } from 'drizzle-orm/node-postgres/migrator';
import pg from 'pg';
import * as schema from './schema.js';
import { lockDirectory } from './directory-lock.js';

export type Database = PgDatabase<PgQueryResultHKT, typeof schema>;

/**
 * The control plane: drizzle over either an embedded PGlite (the default, so `npm start` needs no server)
 * or a PostgreSQL server. The same schema and migrations run on both.
 */
export type ControlPlane = {
  db: Database;
  kind: 'pglite' | 'postgres';
  /** Runs raw SQL and returns the rows of every statement (the shape pg-boss's adapter needs). */
  executeSql: (text: string, values?: unknown[]) => Promise<{ rows: unknown[] }>;
  close: () => Promise<void>;
  /** PGlite only: a tarball of the data directory, to start other instances from (tests use it as a template). */
  dumpDataDir?: () => Promise<Blob>;
};

export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../drizzle');

export type OpenOptions =
  | { kind: 'pglite'; dataDir?: string; loadDataDir?: Blob }
  | { kind: 'postgres'; url: string; poolSize?: number };

export async function openControlPlane(options: OpenOptions): Promise<ControlPlane> {
  if (options.kind === 'pglite') {
    if (options.dataDir) fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
    const unlock = options.dataDir ? lockDirectory(options.dataDir) : () => {};
    let client: PGlite;
    try {
      client = await PGlite.create({
        ...(options.dataDir ? { dataDir: options.dataDir } : {}),
        ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}),
      });
    } catch (error) {
      unlock();
      throw error;
    }
    const db = drizzlePglite(client, { schema }) as unknown as Database;
    return {
      db,
      kind: 'pglite',
      executeSql: async (text, values) => {
        if (values && values.length > 0) {
          const result = await client.query(text, values);
          return { rows: result.rows };
        }
        // Parameterless SQL may hold several statements; pg-boss expects the rows of all of them.
        const results = await client.exec(text);
        return { rows: results.flatMap((result) => result.rows) };
      },
      close: async () => {
        try {
          await client.close();
        } finally {
          unlock();
        }
      },
      dumpDataDir: async () => (await client.dumpDataDir('none')) as Blob,
    };
  }
  const pool = new pg.Pool({ connectionString: options.url, max: options.poolSize ?? 10 });
  // A pool error on an idle client must not crash the process; the next query reconnects.
  pool.on('error', () => {});
  const db = drizzlePostgres(pool, { schema }) as unknown as Database;
  return {
    db,
    kind: 'postgres',
    executeSql: async (text, values) => {
      const result = await pool.query(text, values);
      const results = Array.isArray(result) ? result : [result];
      return { rows: results.flatMap((r: pg.QueryResult) => r.rows ?? []) };
    },
    close: () => pool.end(),
  };
}

export async function migrateControlPlane(controlPlane: ControlPlane): Promise<void> {
  if (controlPlane.kind === 'pglite') {
    await migratePglite(controlPlane.db as never, { migrationsFolder });
  } else {
    await migratePostgres(controlPlane.db as never, { migrationsFolder });
  }
}
