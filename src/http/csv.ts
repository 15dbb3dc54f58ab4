import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { Context } from 'hono';

export { toCsv } from './csv-text.js';

/**
 * Answers with a CSV file of shared data written in staging (a channel pull, an external delivery), naming the
 * version, its content hash and the rows in headers, and deletes the file once it has been sent.
 */
export function sharedCsvResponse(c: Context, delivery: { file: string; versionNumber: number; contentHash: string; rowCount: number }, filename: string): Response {
  const stream = fs.createReadStream(delivery.file);
  stream.on('close', () => fs.rmSync(delivery.file, { force: true }));
  c.header('Content-Type', 'text/csv; charset=utf-8');
  c.header('Content-Disposition', `attachment; filename="${filename}"`);
  c.header('PDS-Dataset-Version', String(delivery.versionNumber));
  c.header('PDS-Content-Hash', delivery.contentHash);
  c.header('PDS-Row-Count', String(delivery.rowCount));
  return c.body(Readable.toWeb(stream) as ReadableStream, 200);
}
