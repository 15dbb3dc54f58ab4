import { asc, gt, sql } from 'drizzle-orm';
import type { Database } from '../db/connect.js';
import { auditCheckpoints, auditLeaves } from '../db/schema.js';
import { signWithPlatformKey, type KeyRing } from '../identity/keys.js';
import { bulkInsert, rowsFor } from '../db/bulk-insert.js';
import { canonicalJson } from './canonical-json.js';
import { leafHash, MerkleTree } from './merkle.js';

/**
 * The tamper-evident audit log (DESIGN section 6). Each event becomes one leaf: its RFC 8785 canonical JSON,
 * hashed as an RFC 9162 leaf. Appends happen inside the caller's transaction, so an event commits together with
 * the change it records — or neither does (a release and its leaf, for instance).
 */
export type AuditEvent = {
  type: string;
  /** Who acted: a principal id, or "system". */
  actor: string;
  operator?: string | null;
  job?: string | null;
  datasets?: string[];
  /** Event details. Never raw data values; DuckDB error texts appear only as hashes. */
  details?: Record<string, unknown>;
};

export type Checkpoint = { tree_size: number; root_hash: string; timestamp: string; jws: string };

type Executor = Pick<Database, 'execute' | 'insert' | 'select'>;

// One lock number for the whole log: appends are serialised so that indexes stay dense and ordered by commit.
const appendLock = 0x7064735f61756469;

export type AuditLeafRow = typeof auditLeaves.$inferInsert & { leafIndex: number };

/**
 * Appends events in order and returns their leaf indexes. Must run inside a transaction: the advisory lock is
 * held until that transaction ends, so concurrent appenders (any process) take turns.
 */
export async function appendAuditEvents(tx: Executor, events: AuditEvent[], at: Date): Promise<number[]> {
  const rows = await nextAuditLeaves(tx, events, at);
  await bulkInsert(tx, rowsFor(auditLeaves, rows));
  return rows.map((row) => row.leafIndex);
}

/**
 * Takes the log's lock until the transaction ends (see nextAuditLeaves), for a caller that numbers its own leaves
 * (numberAuditLeaves) or must read and write something else in turn with every appender (the product-call
 * ledger's shared quotas).
 */
export async function lockAuditLog(tx: Pick<Executor, 'execute'>, options: { exclusive?: boolean } = {}): Promise<void> {
  if (!options.exclusive) await tx.execute(sql`SELECT pg_advisory_xact_lock(${appendLock})`);
}

/**
 * The leaf rows for events, numbered after the last committed leaf, for the caller to insert in the same
 * transaction (with other rows in one statement). Takes the log's lock first, unless `exclusive` says no other
 * transaction can run meanwhile (PGlite: one connection, one transaction at a time, one process per data
 * directory), where the lock would be one more statement and nothing more.
 */
export async function nextAuditLeaves(tx: Executor, events: AuditEvent[], at: Date, options: { exclusive?: boolean } = {}): Promise<AuditLeafRow[]> {
  if (events.length === 0) return [];
  await lockAuditLog(tx, options);
  const [row] = await tx.select({ next: nextLeafIndex }).from(auditLeaves);
  return numberAuditLeaves(events, Number(row?.next ?? 0), at);
}

/** The index the next leaf takes, as a column of a query on audit_leaves; read it only while holding the lock. */
export const nextLeafIndex = sql<string>`coalesce(max(${auditLeaves.leafIndex}) + 1, 0)`;

/** The leaf rows for events numbered from `first` (nextLeafIndex, read under the lock in this transaction). */
export function numberAuditLeaves(events: AuditEvent[], first: number, at: Date): AuditLeafRow[] {
  const timestamp = at.toISOString();
  return events.map((event, offset) => {
    const leaf = canonicalJson({ ...event, at: timestamp, index: first + offset });
    return {
      leafIndex: first + offset,
      leafHash: leafHash(leaf).toString('hex'),
      leaf,
      eventType: event.type,
      operatorId: event.operator ?? null,
      jobId: event.job ?? null,
      datasets: event.datasets ?? null,
      createdAt: at,
    };
  });
}

/** Appends in a transaction of its own, for events that record no other change (a denial, a start-up). */
export async function recordAuditEvents(db: Database, events: AuditEvent[], at: Date): Promise<number[]> {
  return db.transaction((tx) => appendAuditEvents(tx as unknown as Executor, events, at));
}

/**
 * A process's view of the tree, synced from committed leaves only (never from an open transaction), so a proof
 * never covers a leaf that could still roll back.
 */
export function createAuditTree(db: Database, keys: KeyRing, clock: () => Date) {
  const tree = new MerkleTree();
  let syncing: Promise<void> | undefined;

  async function sync(): Promise<MerkleTree> {
    syncing ??= (async () => {
      try {
        for (;;) {
          const rows = await db
            .select({ leafIndex: auditLeaves.leafIndex, leafHash: auditLeaves.leafHash })
            .from(auditLeaves)
            .where(gt(auditLeaves.leafIndex, tree.size - 1))
            .orderBy(asc(auditLeaves.leafIndex))
            .limit(50_000);
          // A gap means a lower index is still uncommitted (or the log was tampered with): stop at it.
          for (const row of rows) {
            if (row.leafIndex !== tree.size) return;
            tree.append(Buffer.from(row.leafHash, 'hex'));
          }
          if (rows.length < 50_000) return;
        }
      } finally {
        syncing = undefined;
      }
    })();
    await syncing;
    return tree;
  }

  return {
    sync,
    /** Signs and stores a checkpoint of the current tree, unless the newest one already covers it. */
    async checkpoint(): Promise<Checkpoint> {
      const current = await sync();
      const [latest] = await db.select().from(auditCheckpoints).orderBy(sql`${auditCheckpoints.treeSize} DESC`).limit(1);
      if (latest && latest.treeSize === current.size) {
        return { tree_size: latest.treeSize, root_hash: latest.rootHash, timestamp: latest.timestamp, jws: latest.jws };
      }
      const body = { tree_size: current.size, root_hash: current.root().toString('hex'), timestamp: clock().toISOString() };
      const jws = signWithPlatformKey(keys, 'pds-checkpoint+jws', body);
      await db.insert(auditCheckpoints).values({ treeSize: body.tree_size, rootHash: body.root_hash, timestamp: body.timestamp, jws }).onConflictDoNothing();
      return { ...body, jws };
    },
  };
}

export type AuditTree = ReturnType<typeof createAuditTree>;
