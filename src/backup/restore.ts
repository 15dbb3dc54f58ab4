import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { compactVerify, decodeProtectedHeader } from 'jose';
import { sql } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { sha256File, type SnapshotStore } from '../domain-store/snapshot-store.js';
import { AppError } from '../errors/app-error.js';
import type { KeyRing } from '../identity/keys.js';
import { backupFormat, backupSignatureType, backupSummary, migrationLevel, publicTables, type BackupManifest } from './backup.js';
import { rowsOf, type SqlRunner } from '../db/raw-rows.js';
import { recordAuditEvents } from '../audit/audit-log.js';

/** Rows per INSERT … json_populate_recordset, bounded by size too (audit leaves and job plans can be large). */
const batchRows = 2_000;
const batchBytes = 4 << 20;

/**
 * Restores a backup (backup.ts) into an empty control plane and domain store. Everything is checked before
 * anything is written: the manifest's signature with this platform's key, the format and migration level, every
 * table file's and snapshot's SHA-256. Then snapshots are put in place (read-only, as loading does) and all rows
 * go in in one transaction, parents before children, so a failed restore leaves the control plane empty.
 */
export async function restoreBackup(
  deps: { db: Database; store: SnapshotStore; keys: KeyRing; clock: () => Date },
  source: string,
  options: { actor: string; onProgress?: (done: number, total: number, step: string) => void },
): Promise<BackupManifest> {
  const onProgress = options.onProgress;
  const folder = path.resolve(source);
  const { manifest, manifestSha256 } = await readManifest(deps.keys, folder);

  const here = await migrationLevel(deps.db);
  if (here.count !== manifest.migrations.count || here.last !== manifest.migrations.last) {
    throw new AppError('CONFLICT', `the backup was made at migration ${manifest.migrations.count} and this platform is at ${here.count}: restore it with the release that made it`);
  }
  const tables = await publicTables(deps.db);
  const backedUp = new Set(manifest.tables.map((table) => table.name));
  const missing = tables.filter((name) => !backedUp.has(name));
  const unknown = manifest.tables.filter((table) => !tables.includes(table.name));
  if (missing.length > 0 || unknown.length > 0) throw new AppError('CONFLICT', 'the backup does not hold the tables of this schema');
  for (const name of tables) {
    const rows = await rowsOf<{ present: boolean }>(deps.db, sql`SELECT EXISTS (SELECT 1 FROM ${sql.identifier(name)}) AS present`);
    if (rows[0]?.present) throw new AppError('CONFLICT', `restore goes into an empty control plane; table ${name} has rows (use a new DATA_DIR or database)`);
  }

  for (const [index, table] of manifest.tables.entries()) {
    onProgress?.(index, manifest.tables.length, `checking table ${table.name}`);
    const file = tableFile(folder, table.name);
    if (!fs.existsSync(file) || (await sha256File(file)) !== table.sha256) throw new AppError('CONFLICT', `the backup's table ${table.name} does not match its manifest: the backup was changed or damaged`);
  }
  for (const [index, snapshot] of manifest.snapshots.entries()) {
    onProgress?.(index, manifest.snapshots.length, `checking snapshot ${snapshot.dataset} ${snapshot.sha256.slice(0, 12)}`);
    const file = snapshotFile(folder, snapshot);
    if (!fs.existsSync(file) || (await sha256File(file)) !== snapshot.sha256) throw new AppError('CONFLICT', `the backup's snapshot of ${snapshot.dataset} ${snapshot.sha256} does not match its hash: the backup was changed or damaged`);
  }

  for (const [index, snapshot] of manifest.snapshots.entries()) {
    const target = deps.store.snapshotPath(snapshot.dataset, snapshot.sha256);
    if (fs.existsSync(target) && (await sha256File(target)) === snapshot.sha256) continue;
    onProgress?.(index, manifest.snapshots.length, `snapshot ${snapshot.dataset} ${snapshot.sha256.slice(0, 12)}`);
    const staging = deps.store.stagingPath('.duckdb');
    fs.copyFileSync(snapshotFile(folder, snapshot), staging);
    if (fs.existsSync(target)) fs.rmSync(target, { force: true });
    deps.store.publish(staging, snapshot.dataset, snapshot.sha256);
  }

  const order = await parentsFirst(deps.db, tables);
  await deps.db.transaction(async (tx) => {
    for (const [index, name] of order.entries()) {
      onProgress?.(index, order.length, `table ${name}`);
      await insertRows(tx, name, tableFile(folder, name));
    }
  });
  // The restored log goes on from where the backup left it: this leaf follows its last.
  await recordAuditEvents(deps.db, [{ type: 'platform.restored', actor: options.actor, details: { ...backupSummary(manifest), manifestSha256 } }], deps.clock());
  return manifest;
}

async function readManifest(keys: KeyRing, folder: string): Promise<{ manifest: BackupManifest; manifestSha256: string }> {
  const file = path.join(folder, 'manifest.jws');
  if (!fs.existsSync(file)) throw new AppError('NOT_FOUND', 'no manifest.jws in that folder: not a backup');
  const jws = fs.readFileSync(file, 'utf8').trim();
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    throw new AppError('CONFLICT', 'the backup manifest is not a JWS');
  }
  const key = typeof header.kid === 'string' ? keys.verificationKeys.get(header.kid) : undefined;
  if (!key || key.purpose !== 'platform' || header.typ !== backupSignatureType) {
    throw new AppError('CONFLICT', "the backup was signed with another platform key: restore it with the key it was made with, current or retired (DATA_DIR/keys, PDS_PLATFORM_KEY_FILE or PDS_RETIRED_PLATFORM_KEY_FILES)");
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, key.publicKey));
  } catch {
    throw new AppError('CONFLICT', "the backup manifest's signature does not verify: the backup was changed or damaged");
  }
  const manifest = JSON.parse(new TextDecoder().decode(payload)) as BackupManifest;
  if (manifest.format !== backupFormat) throw new AppError('CONFLICT', `the backup is in format ${String(manifest.format)}, not ${backupFormat}`);
  return { manifest, manifestSha256: crypto.hash('sha256', jws, 'hex') };
}

const tableFile = (folder: string, name: string) => path.join(folder, 'control-plane', `${name}.jsonl`);
// Names come from a verified manifest, and a hash is hex: neither can step out of the folder.
const snapshotFile = (folder: string, snapshot: BackupManifest['snapshots'][number]) => {
  if (!/^[a-z][a-z0-9_]{0,62}$/.test(snapshot.dataset) || !/^[0-9a-f]{64}$/.test(snapshot.sha256)) throw new AppError('CONFLICT', 'the backup names a snapshot oddly');
  return path.join(folder, 'domain', snapshot.dataset, `${snapshot.sha256}.duckdb`);
};

/** Tables ordered so that every table comes after the tables its foreign keys point to. */
async function parentsFirst(db: SqlRunner, tables: string[]): Promise<string[]> {
  const rows = await rowsOf<{ child: string; parent: string }>(db, sql`
    SELECT child.relname AS child, parent.relname AS parent
    FROM pg_constraint c
    JOIN pg_class child ON child.oid = c.conrelid
    JOIN pg_class parent ON parent.oid = c.confrelid
    JOIN pg_namespace n ON n.oid = child.relnamespace
    WHERE c.contype = 'f' AND n.nspname = 'public' AND child.oid <> parent.oid`);
  const ordered: string[] = [];
  const placed = new Set<string>();
  const visit = (name: string, path: Set<string>) => {
    if (placed.has(name) || !tables.includes(name)) return;
    if (path.has(name)) throw new Error(`foreign keys form a cycle through ${name}`);
    path.add(name);
    for (const edge of rows) if (edge.child === name) visit(edge.parent, path);
    path.delete(name);
    placed.add(name);
    ordered.push(name);
  };
  for (const name of tables) visit(name, new Set());
  return ordered;
}

async function insertRows(db: SqlRunner, name: string, file: string): Promise<void> {
  let batch: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    await db.execute(sql`INSERT INTO ${sql.identifier(name)} SELECT * FROM json_populate_recordset(NULL::${sql.identifier(name)}, ${`[${batch.join(',')}]`}::json)`);
    batch = [];
    bytes = 0;
  };
  const lines = readline.createInterface({ input: fs.createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.length === 0) continue;
    batch.push(line);
    bytes += line.length;
    if (batch.length >= batchRows || bytes >= batchBytes) await flush();
  }
  await flush();
}
