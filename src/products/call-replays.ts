import crypto from 'node:crypto';
import { lt, sql, type SQL } from 'drizzle-orm';
import { canonicalJson } from '../audit/canonical-json.js';
import type { Database } from '../db/connect.js';
import type { SqlRunner } from '../db/raw-rows.js';
import { rowsOf } from '../db/raw-rows.js';
import { callReplays } from '../db/schema.js';
import { AppError } from '../errors/app-error.js';
import type { KeyRing } from '../identity/keys.js';

/**
 * Answers kept for Idempotency-Key retries that reach another API process, or this one after a restart. The
 * process's own memory (idempotent-calls.ts) answers a retry it has seen; this is the durable record behind it,
 * so that a bank whose request timed out is neither charged twice nor uses up a second of the subject's daily
 * checks, whichever process its retry reaches.
 *
 * A keyed call carries its retry key to the call ledger, which, in the batch's transaction and under the audit
 * log's lock, finds an earlier call under the same key before it settles quotas: the call is then answered with
 * that call's answer, re-signed from what was kept (Ed25519 is deterministic, so the JWS is the same bytes while
 * the platform key is), and records nothing. The first call under a key keeps its answer in the statement that
 * records it. A call refused by this process's own counters (the retry of a subject's last check, say) looks here
 * before the refusal is sent.
 *
 * What is kept re-creates the answer: the payload without its leaf index (that, and the fee, are columns), and the
 * response's other fields (an encrypted answer's ciphertext, a score's linear predictor). It holds the request
 * hash's salt, which the audit log's hashes are salted with so that nobody reading the log can test a guess of a
 * subject, and the answer itself; so it is sealed (AES-256-GCM under a key derived from the platform key, bound to
 * the consumer and key) and deleted after a day by the governance sweep.
 */
export type RetryKey = { consumerId: string; keyHash: string; requestHash: string };
/**
 * The parts of an answer kept for a replay: the signed payload without its leaf index, the other fields, and
 * where one field is binary (an encrypted answer, ~0.4 MB), its bytes as they are rather than in base64 inside
 * the JSON (measured on PGlite: a 0.4 MB answer kept as bytes costs ~12 ms to store, as text ~34 ms).
 */
export type KeptAnswer = { payload: Record<string, unknown>; fields: Record<string, unknown>; binary?: { field: string; bytes: Uint8Array } };
/** A call answered before under a retry key, as the ledger found it. */
export type EarlierCall = { keyHash: string; requestHash: string; auditIndex: number; feeFen: number; sealed: Buffer };

export const replayRefusals = {
  keyReused: () => new AppError('IDEMPOTENCY_KEY_REUSED', 'this Idempotency-Key was sent before with a different call; use a new key for a new call'),
};

const dayMilliseconds = 86_400_000;

type EarlierCallJson = { key_hash: string; request_hash: string; audit_index: number | string; fee_fen: number; sealed: string };
const fromJson = (row: EarlierCallJson): EarlierCall => ({ keyHash: row.key_hash, requestHash: row.request_hash, auditIndex: Number(row.audit_index), feeFen: Number(row.fee_fen), sealed: Buffer.from(row.sealed, 'base64') });

export function createCallReplays(keys: KeyRing, options: { ttlMilliseconds?: number } = {}) {
  const ttl = options.ttlMilliseconds ?? dayMilliseconds;
  // Keyed, not plain, hashes: a plain verification's request holds the identifier and name in clear.
  const hashKey = Buffer.from(keys.derivedSecret('idempotency keys and requests'), 'hex');
  const sealKey = Buffer.from(keys.derivedSecret('kept answers for idempotent retries'), 'hex');
  const keyed = (text: string) => crypto.createHmac('sha256', hashKey).update(text).digest('hex');
  const boundTo = (retry: RetryKey) => Buffer.from(`${retry.consumerId}\u0000${retry.keyHash}`);

  /**
   * A JSON column `earlier_calls` for the ledger's SELECT: the calls still kept under the batch's retry keys. Read
   * under the audit log's lock, like the quota counts, so that two processes cannot both answer one key anew.
   */
  function earlierCallsColumn(retries: RetryKey[], now: Date): SQL {
    if (retries.length === 0) return sql`'[]'::jsonb AS earlier_calls`;
    // By key hash alone: it is keyed by the consumer too, so one consumer's key never finds another's call.
    const keyHashes = JSON.stringify(retries.map((retry) => retry.keyHash));
    return sql`(SELECT coalesce(jsonb_agg(jsonb_build_object('key_hash', kept.key_hash, 'request_hash', kept.request_hash, 'audit_index', kept.audit_index, 'fee_fen', kept.fee_fen, 'sealed', encode(kept.sealed, 'base64'))), '[]'::jsonb)
      FROM ${callReplays} kept WHERE kept.key_hash = ANY(ARRAY(SELECT jsonb_array_elements_text(${keyHashes}::jsonb))) AND kept.expires_at > ${now.toISOString()}) AS earlier_calls`;
  }

  return {
    ttlMilliseconds: ttl,

    /** A consumer's key names one call of theirs; the request (path and body) is what a retry must repeat. */
    retryKey(consumerId: string, key: string, request: unknown): RetryKey {
      return { consumerId, keyHash: keyed(`${consumerId}\u0000${key}`), requestHash: keyed(canonicalJson(request)) };
    },

    /** Nonce, then the encrypted JSON's length (4 bytes), the JSON and the binary field's bytes, then the tag. */
    seal(retry: RetryKey, kept: KeptAnswer): Buffer {
      const json = Buffer.from(JSON.stringify({ payload: kept.payload, fields: kept.fields, binaryField: kept.binary?.field }));
      const length = Buffer.alloc(4);
      length.writeUInt32BE(json.length);
      const nonce = crypto.randomBytes(12);
      const cipher = crypto.createCipheriv('aes-256-gcm', sealKey, nonce).setAAD(boundTo(retry));
      const parts = [nonce, cipher.update(length), cipher.update(json)];
      if (kept.binary) parts.push(cipher.update(kept.binary.bytes));
      return Buffer.concat([...parts, cipher.final(), cipher.getAuthTag()]);
    },

    /** The kept answer; a platform fault when it does not open (a row altered, or moved to another consumer or key). */
    open(retry: RetryKey, sealed: Uint8Array): KeptAnswer {
      const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
      const decipher = crypto.createDecipheriv('aes-256-gcm', sealKey, bytes.subarray(0, 12)).setAAD(boundTo(retry));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      const plain = Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]);
      const length = plain.readUInt32BE(0);
      const { payload, fields, binaryField } = JSON.parse(plain.subarray(4, 4 + length).toString('utf8')) as { payload: KeptAnswer['payload']; fields: KeptAnswer['fields']; binaryField?: string };
      return { payload, fields, ...(binaryField === undefined ? {} : { binary: { field: binaryField, bytes: plain.subarray(4 + length) } }) };
    },

    earlierCallsColumn,
    earlierCallsOf: (column: EarlierCallJson[]): EarlierCall[] => column.map(fromJson),

    /** Keeps first answers (an expired row under the same key is replaced); run in the batch's statement. */
    keep(rows: Array<{ retry: RetryKey; callId: string; auditIndex: number; feeFen: number; sealed: Buffer }>, now: Date): SQL[] {
      if (rows.length === 0) return [];
      const expiresAt = new Date(now.getTime() + ttl).toISOString();
      const records = rows.map((row) => ({ consumer_id: row.retry.consumerId, key_hash: row.retry.keyHash, request_hash: row.retry.requestHash, call_id: row.callId, audit_index: row.auditIndex, fee_fen: row.feeFen, sealed: row.sealed.toString('base64'), expires_at: expiresAt }));
      return [
        sql`INSERT INTO ${callReplays} (consumer_id, key_hash, request_hash, call_id, audit_index, fee_fen, sealed, expires_at)
          SELECT consumer_id, key_hash, request_hash, call_id, audit_index, fee_fen, decode(sealed, 'base64'), expires_at FROM jsonb_to_recordset(${JSON.stringify(records)}::jsonb)
            AS incoming(consumer_id text, key_hash text, request_hash text, call_id text, audit_index bigint, fee_fen integer, sealed text, expires_at timestamptz)
          ON CONFLICT (key_hash) DO UPDATE SET consumer_id = excluded.consumer_id, request_hash = excluded.request_hash, call_id = excluded.call_id, audit_index = excluded.audit_index,
            fee_fen = excluded.fee_fen, sealed = excluded.sealed, expires_at = excluded.expires_at`,
      ];
    },

    /** The call kept under a retry key, outside a batch (for a call this process's own counters refused). */
    async find(db: SqlRunner, retry: RetryKey, now: Date): Promise<EarlierCall | undefined> {
      const [row] = await rowsOf<{ earlier_calls: EarlierCallJson[] }>(db, sql`SELECT ${earlierCallsColumn([retry], now)}`);
      return row!.earlier_calls.map(fromJson)[0];
    },

    /** Deletes answers kept longer than a day; returns how many. */
    async purge(db: Database, now: Date): Promise<number> {
      return (await db.delete(callReplays).where(lt(callReplays.expiresAt, now)).returning({ keyHash: callReplays.keyHash })).length;
    },
  };
}

export type CallReplays = ReturnType<typeof createCallReplays>;
