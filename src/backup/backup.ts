import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { rowsOf, type SqlRunner } from '../db/raw-rows.js';
import { sha256File, type SnapshotStore } from '../domain-store/snapshot-store.js';
import { AppError } from '../errors/app-error.js';
import { signWithPlatformKey, type KeyRing } from '../identity/keys.js';
import { recordAuditEvents } from '../audit/audit-log.js';

/**
 * Backups (measures art. 11: classified storage with backups, no tampering or loss). A backup is a folder:
 *
 *   manifest.jws                     the manifest below, signed with the platform key (typ pds-backup+jws)
 *   control-plane/<table>.jsonl      every row of every table of the control plane, one JSON object per line
 *   domain/<dataset>/<sha256>.duckdb every dataset version's snapshot, named by the SHA-256 of its bytes
 *
 * The manifest lists each table's row count and file hash, each snapshot, and the schema's migration level.
 * Rows are written by PostgreSQL itself (`row_to_json`) inside one read-only REPEATABLE READ transaction, so the
 * tables are one consistent moment even beside a running server on PostgreSQL, and restoring reads them back
 * with `json_populate_recordset`: every type round-trips as PostgreSQL writes it, on PGlite and PostgreSQL alike
 * (a backup of the embedded default restores into a PostgreSQL server). Snapshots are immutable and named by
 * their hash, so copying them after the tables is safe; each copy is hashed against its name.
 *
 * No secret is in a backup: keys stay in their files (DATA_DIR/keys or PDS_*_KEY_FILE), and the keyed hashes in
 * the tables (subject keys, sketches) mean nothing without them. Restoring needs the same platform key, which is
 * also what verifies the manifest. The job queue (pg-boss) is not copied: jobs queued at the time are queued
 * again, and jobs running are failed as system failures, when the restored platform starts (job-runtime.ts).
 *
 * Each backup and each restore is an audit event (`platform.backed-up`, `platform.restored`) with the manifest's
 * hash, so a regulator sees when the data was copied and by whom (art. 11: storage under control).
 */
export const backupFormat = 'pds-backup/1';
export const backupSignatureType = 'pds-backup+jws';

export type BackupManifest = {
  format: typeof backupFormat;
  createdAt: string;
  /** Migrations applied to the control plane: a backup restores only into the same level. */
  migrations: { count: number; last: string };
  tables: Array<{ name: string; rows: number; sha256: string }>;
  snapshots: Array<{ dataset: string; sha256: string; bytes: number }>;
};

/** Tables whose rows the migrations themselves write; a restored platform keeps its own. */
export const tablesOwnedByMigrations = new Set(['catalogue_generation']);

const pageRows = 5_000;

export async function migrationLevel(db: SqlRunner): Promise<BackupManifest['migrations']> {
  const rows = await rowsOf<{ count: number; last: string | null }>(
    db,
    sql`SELECT count(*)::int AS count, (SELECT hash FROM drizzle.__drizzle_migrations ORDER BY created_at DESC, id DESC LIMIT 1) AS last FROM drizzle.__drizzle_migrations`,
  );
  return { count: Number(rows[0]?.count ?? 0), last: String(rows[0]?.last ?? '') };
}

export async function publicTables(db: SqlRunner): Promise<string[]> {
  const rows = await rowsOf<{ name: string }>(db, sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`);
  return rows.map((row) => row.name).filter((name) => !tablesOwnedByMigrations.has(name));
}

/**
 * Writes a backup into `target`, which must not exist or be empty. The folder is written under another name
 * beside it and renamed when complete, so a backup folder is either whole or absent.
 */
export async function createBackup(
  deps: { db: Database; store: SnapshotStore; keys: KeyRing; clock: () => Date },
  target: string,
  options: { actor: string; onProgress?: (done: number, total: number, step: string) => void },
): Promise<BackupManifest> {
  const onProgress = options.onProgress;
  const destination = path.resolve(target);
  if (fs.existsSync(destination) && fs.readdirSync(destination).length > 0) throw new AppError('CONFLICT', 'the backup folder exists and is not empty');
  fs.mkdirSync(path.dirname(destination), { recursive: true });
  const partial = `${destination}.partial-${crypto.randomUUID()}`;
  fs.mkdirSync(path.join(partial, 'control-plane'), { recursive: true, mode: 0o700 });
  try {
    const { tables, versions, migrations } = await deps.db.transaction(
      async (tx) => {
        const names = await publicTables(tx);
        const tables: BackupManifest['tables'] = [];
        for (const [index, name] of names.entries()) {
          onProgress?.(index, names.length, `table ${name}`);
          tables.push(await writeTable(tx, name, path.join(partial, 'control-plane', `${name}.jsonl`)));
        }
        const versions = await rowsOf<{ dataset: string; hash: string }>(tx, sql`SELECT dataset_id AS dataset, content_hash AS hash FROM dataset_versions ORDER BY dataset_id, version_number`);
        return { tables, versions, migrations: await migrationLevel(tx) };
      },
      { isolationLevel: 'repeatable read', accessMode: 'read only' },
    );
    const snapshots: BackupManifest['snapshots'] = [];
    for (const [index, version] of versions.entries()) {
      onProgress?.(index, versions.length, `snapshot ${version.dataset} ${version.hash.slice(0, 12)}`);
      const source = deps.store.snapshotPath(version.dataset, version.hash);
      const copy = path.join(partial, 'domain', version.dataset, `${version.hash}.duckdb`);
      fs.mkdirSync(path.dirname(copy), { recursive: true, mode: 0o700 });
      if (!fs.existsSync(source)) throw new AppError('CONFLICT', `the snapshot of ${version.dataset} ${version.hash} is missing from the domain store`);
      fs.copyFileSync(source, copy);
      // A snapshot whose bytes no longer match its name was changed or damaged on disk: no backup of it.
      if ((await sha256File(copy)) !== version.hash) throw new AppError('CONFLICT', `the snapshot of ${version.dataset} ${version.hash} does not match its hash: the domain store is damaged`);
      snapshots.push({ dataset: version.dataset, sha256: version.hash, bytes: fs.statSync(copy).size });
    }
    const manifest: BackupManifest = { format: backupFormat, createdAt: deps.clock().toISOString(), migrations, tables, snapshots };
    const signed = signWithPlatformKey(deps.keys, backupSignatureType, manifest);
    fs.writeFileSync(path.join(partial, 'manifest.jws'), signed, { mode: 0o600 });
    if (fs.existsSync(destination)) fs.rmdirSync(destination);
    fs.renameSync(partial, destination);
    // The folder's name, not its path: the log is read by regulators, and paths are the server's business.
    await recordAuditEvents(deps.db, [{ type: 'platform.backed-up', actor: options.actor, details: { ...backupSummary(manifest), folder: path.basename(destination), manifestSha256: crypto.hash('sha256', signed, 'hex') } }], deps.clock());
    return manifest;
  } catch (error) {
    fs.rmSync(partial, { recursive: true, force: true });
    throw error;
  }
}

/** Backups and restores as the audit log records them, newest first. */
export async function backupHistory(db: SqlRunner, limit = 100) {
  const rows = await rowsOf<{ leaf: string; leaf_index: string | number }>(
    db,
    sql`SELECT leaf, leaf_index FROM audit_leaves WHERE event_type IN ('platform.backed-up', 'platform.restored') ORDER BY leaf_index DESC LIMIT ${limit}`,
  );
  return rows.map((row) => {
    const event = JSON.parse(row.leaf) as { type: string; actor: string; at: string; details: Record<string, unknown> };
    return { kind: event.type === 'platform.backed-up' ? ('backup' as const) : ('restore' as const), at: event.at, actor: event.actor, auditIndex: Number(row.leaf_index), ...event.details };
  });
}

/** What a backup holds, in numbers (the audit events and the command line say it so). */
export function backupSummary(manifest: BackupManifest) {
  return {
    createdAt: manifest.createdAt,
    tables: manifest.tables.length,
    rows: manifest.tables.reduce((sum, table) => sum + table.rows, 0),
    snapshots: manifest.snapshots.length,
    bytes: manifest.snapshots.reduce((sum, snapshot) => sum + snapshot.bytes, 0),
  };
}

/** Pages through a table in physical order (a keyset on ctid, stable inside the transaction's snapshot). */
async function writeTable(db: SqlRunner, name: string, file: string): Promise<BackupManifest['tables'][number]> {
  const hash = crypto.createHash('sha256');
  const out = fs.openSync(file, 'w', 0o600);
  let rows = 0;
  try {
    let after = '(0,0)';
    for (;;) {
      const page = await rowsOf<{ tid: string; row: string }>(
        db,
        sql`SELECT ctid::text AS tid, row_to_json(t)::text AS row FROM ${sql.identifier(name)} t WHERE ctid > ${after}::tid ORDER BY ctid LIMIT ${pageRows}`,
      );
      if (page.length === 0) break;
      const text = page.map((entry) => `${entry.row}\n`).join('');
      fs.writeSync(out, text);
      hash.update(text);
      rows += page.length;
      after = page.at(-1)!.tid;
    }
  } finally {
    fs.closeSync(out);
  }
  return { name, rows, sha256: hash.digest('hex') };
}
