import { desc, eq } from 'drizzle-orm';
import type { AuditEvent } from '../audit/audit-log.js';
import type { Database } from '../db/connect.js';
import { auditLeaves } from '../db/schema.js';
import type { KeyRing } from './keys.js';

/**
 * What a server start records about its keys: `platform.started` names the keys it runs with, and, when they differ
 * from the last start's, the change gets a leaf of its own so a regulator reading the log sees it as an event —
 * `platform.key-rotated` when the previous platform key was kept as a retired key (what it signed still verifies),
 * `platform.key-replaced` when it was not (receipts, answers, checkpoints and backups it signed no longer verify
 * against the JWKS: almost always a mistake, so the start also warns), `token.key-rotated` for the token key (every
 * token it signed is refused from now on).
 */
export async function startEvents(db: Database, keys: KeyRing, mode: string): Promise<{ events: AuditEvent[]; warnings: string[] }> {
  const [last] = await db.select({ leaf: auditLeaves.leaf }).from(auditLeaves).where(eq(auditLeaves.eventType, 'platform.started')).orderBy(desc(auditLeaves.leafIndex)).limit(1);
  const before = last ? ((JSON.parse(last.leaf) as { details?: { platformKey?: string; tokenKey?: string } }).details ?? {}) : {};
  const retired = keys.retiredPlatform.map((key) => key.kid);
  const events: AuditEvent[] = [];
  const warnings: string[] = [];
  if (before.platformKey && before.platformKey !== keys.platform.kid) {
    if (retired.includes(before.platformKey)) {
      events.push({ type: 'platform.key-rotated', actor: 'system', details: { from: before.platformKey, to: keys.platform.kid } });
    } else {
      events.push({ type: 'platform.key-replaced', actor: 'system', details: { from: before.platformKey, to: keys.platform.kid, retired } });
      warnings.push(
        `the platform key changed and the previous one (${before.platformKey}) is not among the retired keys: what it signed (receipts, answers, checkpoints, backups) no longer verifies; list its file in PDS_RETIRED_PLATFORM_KEY_FILES`,
      );
    }
  }
  if (before.tokenKey && before.tokenKey !== keys.token.kid) events.push({ type: 'token.key-rotated', actor: 'system', details: { from: before.tokenKey, to: keys.token.kid } });
  events.push({ type: 'platform.started', actor: 'system', details: { mode, tokenKey: keys.token.kid, platformKey: keys.platform.kid, retiredPlatformKeys: retired } });
  return { events, warnings };
}
