import fs from 'node:fs';
import { Readable } from 'node:stream';
import type { Context } from 'hono';

/**
 * RFC 4180 CSV. For people (the default), a text cell that starts like a formula is prefixed so spreadsheets do
 * not run it; `forSpreadsheet: false` writes values exactly, for a loader that reads them back.
 */
export function toCsv(header: string[], rows: unknown[][], options: { forSpreadsheet?: boolean } = {}): string {
  const defuse = options.forSpreadsheet ?? true;
  const cell = (value: unknown) => {
    if (value === null || value === undefined) return '';
    let text = typeof value === 'string' ? value : typeof value === 'object' ? JSON.stringify(value) : String(value);
    if (defuse && typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  };
  return [header, ...rows].map((row) => row.map(cell).join(',')).join('\r\n') + '\r\n';
}

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
