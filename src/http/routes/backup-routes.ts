import crypto from 'node:crypto';
import path from 'node:path';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import { platformEntity } from '../../authz/entities.js';
import { backupHistory, backupSummary, createBackup } from '../../backup/backup.js';
import type { Platform } from '../../platform.js';
import type { AppEnv } from '../app-env.js';
import { bearerSecurity, errorResponses } from '../openapi-common.js';

const backupView = z
  .object({ folder: z.string(), createdAt: z.string(), tables: z.number(), rows: z.number(), snapshots: z.number(), bytes: z.number() })
  .openapi('Backup');

const createBackupRoute = createRoute({
  method: 'post',
  path: '/v1/backups',
  tags: ['platform'],
  summary: 'Back up the running platform: every control-plane table and every snapshot, signed (the data centre; art. 11)',
  description:
    'Written to a new folder under PDS_BACKUP_DIR (default DATA_DIR/backups), named in the answer; copy it off the machine from there and restore it with pds restore. On the embedded database other requests wait while the tables are read.',
  security: bearerSecurity,
  responses: { 201: { description: 'The backup', content: { 'application/json': { schema: backupView } } }, ...errorResponses(403, 409) },
});

const historyRoute = createRoute({
  method: 'get',
  path: '/v1/backups',
  tags: ['platform'],
  summary: 'Backups and restores as the audit log records them, newest first: when, by whom, what they held and the hash of the signed manifest (the data centre)',
  security: bearerSecurity,
  responses: { 200: { description: 'The history', content: { 'application/json': { schema: z.object({ backups: z.array(z.record(z.string(), z.unknown()).openapi('BackupEvent')) }) } } }, ...errorResponses(403) },
});

/**
 * The server's own backup, for the embedded default above all: there the database belongs to the running process,
 * so `pds backup` would mean stopping the service. The folder is chosen here, never by the caller, so no request
 * can make the server write elsewhere; its name (not the server's path) is the answer.
 */
export function backupRoutes(platform: Platform) {
  const app = new OpenAPIHono<AppEnv>();
  app.openapi(createBackupRoute, async (c) => {
    const principal = c.get('principal');
    await platform.authorizer.require(principal, 'platform:backup', platformEntity);
    const stamp = platform.clock().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const folder = `pds-${stamp}-${crypto.randomBytes(3).toString('hex')}`;
    const manifest = await createBackup(platform, path.join(platform.config.backupDir, folder), { actor: principal.id });
    return c.json({ folder, ...backupSummary(manifest) }, 201);
  });
  app.openapi(historyRoute, async (c) => {
    await platform.authorizer.require(c.get('principal'), 'platform:backup', platformEntity);
    return c.json({ backups: await backupHistory(platform.db) }, 200);
  });
  return app;
}
