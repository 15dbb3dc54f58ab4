import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * The domain store (data plane): one read-only DuckDB database file per dataset version, named by the SHA-256
 * of its bytes, under DATA_DIR/domain/<dataset>/<hash>.duckdb. Each file holds one table, `data`.
 * Files are written once in a staging folder on the same filesystem and renamed into place, so a version
 * either exists whole or not at all.
 */
export function createSnapshotStore(dataDir: string) {
  const root = path.join(dataDir, 'domain');
  const staging = path.join(root, '.staging');
  return {
    root,
    snapshotPath: (datasetId: string, contentHash: string) => path.join(root, datasetId, `${contentHash}.duckdb`),
    stagingPath(suffix: string): string {
      fs.mkdirSync(staging, { recursive: true, mode: 0o700 });
      return path.join(staging, `${crypto.randomUUID()}${suffix}`);
    },
    /**
     * Moves a finished staging file into place, read-only. Files are named by their content, so a file already in
     * place holds these very bytes and may belong to a recorded version (the same data delivered twice, or at the
     * same moment): it is kept, the staging copy dropped, and `created` is false — whoever did not create a
     * snapshot must never remove it.
     */
    publish(stagingFile: string, datasetId: string, contentHash: string): { path: string; created: boolean } {
      const target = this.snapshotPath(datasetId, contentHash);
      fs.mkdirSync(path.dirname(target), { recursive: true, mode: 0o700 });
      if (fs.existsSync(target)) {
        fs.rmSync(stagingFile, { force: true });
        return { path: target, created: false };
      }
      fs.chmodSync(stagingFile, 0o444);
      fs.renameSync(stagingFile, target);
      return { path: target, created: true };
    },
    /**
     * Removes leftovers of loads that died half-way (crash, kill) and channel exports whose response was never
     * read; called at start-up and every ten minutes by `pds serve`. Only files older than an hour go, since
     * another server sharing this domain store may be loading right now.
     */
    clearStaging(olderThanMilliseconds = 3_600_000): void {
      if (!fs.existsSync(staging)) return;
      const cutoff = Date.now() - olderThanMilliseconds;
      for (const name of fs.readdirSync(staging)) {
        const file = path.join(staging, name);
        // Another process may remove a file between the listing and the look.
        const stat = fs.statSync(file, { throwIfNoEntry: false });
        if (stat && stat.mtimeMs < cutoff) fs.rmSync(file, { force: true });
      }
    },
  };
}

export type SnapshotStore = ReturnType<typeof createSnapshotStore>;

export async function sha256File(file: string): Promise<string> {
  const hash = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * The text encodings a CSV delivery may come in. Public bodies' spreadsheet software on Chinese Windows saves
 * "CSV" in the system code page, GBK; GB 18030 is its superset (and the mandatory national standard), so one
 * decoder reads GB 2312, GBK and GB 18030 files alike. Everything else is converted to UTF-8 by the sender.
 */
export type CsvEncoding = 'utf-8' | 'gb18030';

const encodingByName: Record<string, CsvEncoding> = { 'utf-8': 'utf-8', utf8: 'utf-8', gb18030: 'gb18030', gbk: 'gb18030', gb2312: 'gb18030' };

/** An encoding by the name a sender gives it (a MIME charset or a command-line value), case-insensitive. */
export const csvEncodingNamed = (name: string): CsvEncoding | undefined => encodingByName[name.toLowerCase()];

/** Throws if the file is not valid UTF-8; reads it in chunks so memory stays flat. */
export async function assertUtf8(file: string): Promise<void> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  try {
    for await (const chunk of fs.createReadStream(file, { highWaterMark: 1 << 20 })) decoder.decode(chunk as Buffer, { stream: true });
    decoder.decode();
  } catch {
    throw new EncodingError('utf-8');
  }
}

/**
 * Writes `source`, read as `encoding`, to `target` as UTF-8, in chunks. A byte sequence the encoding does not
 * define stops it (no replacement characters slip into a dataset); the caller removes the partial target.
 */
export async function transcodeToUtf8(source: string, encoding: CsvEncoding, target: string): Promise<void> {
  const decoder = new TextDecoder(encoding, { fatal: true });
  await pipeline(
    fs.createReadStream(source, { highWaterMark: 1 << 20 }),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) yield decodeOrThrow(() => decoder.decode(chunk, { stream: true }), encoding);
      yield decodeOrThrow(() => decoder.decode(), encoding);
    },
    fs.createWriteStream(target, { mode: 0o600 }),
  );
}

function decodeOrThrow(decode: () => string, encoding: CsvEncoding): string {
  try {
    return decode();
  } catch {
    throw new EncodingError(encoding);
  }
}

export class EncodingError extends Error {
  constructor(readonly encoding: CsvEncoding) {
    super(`not valid ${encoding}`);
  }
}
