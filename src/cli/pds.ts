#!/usr/bin/env node
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { serve } from '@hono/node-server';
import { createPlatform } from '../bootstrap.js';
import { findDataset, listCatalogue } from '../catalog/catalogue.js';
import { ConfigError, loadConfig, type Config } from '../config/config.js';
import { fetchLogSnapshot, verifyLog, type SignedCheckpoint } from '../audit/verify-log.js';
import { demoPrincipals, seedDemo, writeDevTokens } from '../demo/seed-demo.js';
import { startEvents } from '../identity/key-changes.js';
import { loadDatasetVersion } from '../domain-store/load-version.js';
import { csvEncodingNamed } from '../domain-store/snapshot-store.js';
import { ControlPlaneInUse } from '../db/directory-lock.js';
import { AppError } from '../errors/app-error.js';
import { createApp } from '../http/app.js';
import { purgeRequestReplays } from '../http/idempotent-requests.js';
import { startJobRuntime } from '../jobs/job-runtime.js';
import { sweepGovernance } from '../governance/deadline-alerts.js';
import { qualityHistory } from '../domain-store/quality-check.js';
import { recordAuditEvents } from '../audit/audit-log.js';
import { describeForLog } from '../errors/describe-for-log.js';
import { issueToken } from '../identity/issue-token.js';
import { KeyError } from '../identity/keys.js';
import type { Platform } from '../platform.js';
import { progressBar } from './progress-bar.js';
import { backupSummary, createBackup } from '../backup/backup.js';
import { restoreBackup } from '../backup/restore.js';
import { keysCommand, keysUsage } from './key-commands.js';
import { CommandUsageError, jobsCommand, jobsUsage, remoteTarget, reportsCommand, reportsUsage } from './remote-commands.js';

const usage = `pds — the Lingang public data sandbox

Usage:
  pds serve                         start the API and PDS_WORKERS sandbox workers (dev mode: demo data,
                                    principals and dev-tokens.json on first run)
  pds worker [--workers <n>]        run sandbox workers only (needs DATABASE_URL: workers share PostgreSQL)
  pds datasets list                 print the catalogue (metadata only)
  pds datasets load <id> <file> [--encoding gb18030]
                                    load a CSV (UTF-8, or GB 18030/GBK) or Parquet file as a new version of <id>
  pds audit verify [--server <url>] [--token <jwt>] [--witness <file>]
                                    fetch the audit log, recompute the tree, check checkpoint signatures, prove
                                    consistency with every checkpoint this witness saw before, reconcile releases
                                    (exit 0: verified; 1: a check failed)
  pds token <principal-id> [--ttl <seconds>]
                                    mint an access token (needs the token key: platform administrators only)
  pds keys list|rotate|generate …   the signing keys: list them, rotate one, write a new key file (--help)
  pds backup <folder>               write a signed backup: every control-plane table and every snapshot
  pds restore <folder>              check a backup, then restore it into an empty DATA_DIR / database
  pds jobs check|trial|submit|watch|result …
                                    check SQL against policy (dry run), submit a job, follow it, print its
                                    released result (operators; --help)
  pds reports products|supervision|uses …
                                    the annual product report, the supervision report (regulators), a
                                    dataset's use trail (its source, the data centre, regulators; --help)
  pds --help                        this text

Configuration comes from the environment: PORT, HOST, DATA_DIR, DATABASE_URL, PDS_MODE, PDS_TOKEN_KEY_FILE,
PDS_PLATFORM_KEY_FILE, PDS_RETIRED_PLATFORM_KEY_FILES (see README.md).

Every command takes --help. Exit codes: 0 success, 1 failure (refused, failed, not verified), 2 bad usage or
configuration.`;

const commandUsage: Record<string, string> = {
  serve: 'pds serve — start the API and PDS_WORKERS sandbox workers (dev mode: demo data, principals and dev-tokens.json on first run)',
  worker: 'pds worker [--workers <n>] — run sandbox workers only; needs DATABASE_URL (workers share PostgreSQL)',
  datasets: 'pds datasets list | pds datasets load <id> <file.csv|file.parquet> [--encoding utf-8|gb18030] — the catalogue; load a new version (a CSV is UTF-8 unless --encoding says GB 18030, which also reads GBK and GB 2312)',
  audit: 'pds audit verify [--server <url>] [--token <jwt>] [--witness <file>] — verify the audit log (exit 0 verified, 1 a check failed)',
  token: 'pds token <principal-id> [--ttl <seconds>] — mint an access token (needs the token key)',
  backup:
    'pds backup <folder> — write a backup signed with the platform key: every table of the control plane (one consistent moment) and every dataset snapshot, checked against its hash; no keys (docs/domain-store.md)',
  restore:
    'pds restore <folder> — check a backup (signature with this platform key, migration level, every hash), then restore it into an empty DATA_DIR or database; needs the platform key it was made with (current or retired)',
  jobs: jobsUsage,
  reports: reportsUsage,
  keys: keysUsage,
};

class UsageError extends Error {}

class PortInUse extends Error {
  constructor(host: string, port: number) {
    super(`${host}:${port} is already in use (another pds serve?); stop it or set PORT to a free port`);
  }
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      ttl: { type: 'string' },
      workers: { type: 'string' },
      server: { type: 'string' },
      token: { type: 'string' },
      witness: { type: 'string' },
      datasets: { type: 'string' },
      purpose: { type: 'string' },
      sql: { type: 'string' },
      file: { type: 'string' },
      model: { type: 'string' },
      epsilon: { type: 'string' },
      delta: { type: 'string' },
      mechanism: { type: 'string' },
      bounds: { type: 'string' },
      format: { type: 'string' },
      status: { type: 'string' },
      year: { type: 'string' },
      interval: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      wait: { type: 'boolean' },
      encoding: { type: 'string' },
    },
  });
  const [command, ...rest] = positionals;
  if (values.help || !command) {
    console.log(command && commandUsage[command] ? commandUsage[command] : usage);
    return values.help ? 0 : 2;
  }
  const config = loadConfig();
  switch (command) {
    case 'serve':
      return runServer(await createPlatform(config));
    case 'worker': {
      if (!config.databaseUrl) throw new UsageError('pds worker needs DATABASE_URL: separate workers share a PostgreSQL server (the embedded database serves one process; pds serve runs its own workers)');
      const workers = values.workers === undefined ? Math.max(1, config.workers) : Number(values.workers);
      if (!Number.isInteger(workers) || workers < 1 || workers > 32) throw new UsageError('--workers takes a whole number from 1 to 32');
      return runWorkers(await createPlatform(config), workers);
    }
    case 'audit': {
      if (rest[0] !== 'verify') throw new UsageError('pds audit verify [--server <url>] [--token <jwt>] [--witness <file>]');
      return auditVerifyCommand(config, { server: values.server, token: values.token, witness: values.witness });
    }
    case 'datasets':
      return withPlatform(await createPlatform(config), (platform) => datasetsCommand(platform, rest, values.encoding));
    case 'token': {
      const ttl = values.ttl === undefined ? undefined : Number(values.ttl);
      if (ttl !== undefined && (!Number.isInteger(ttl) || ttl < 60)) throw new UsageError('--ttl takes whole seconds, at least 60');
      return withPlatform(await createPlatform(config), (platform) => tokenCommand(platform, rest[0], ttl));
    }
    case 'keys':
      return keysCommand(config, rest);
    case 'backup': {
      if (!rest[0]) throw new UsageError('pds backup <folder>');
      return withPlatform(await createPlatform(config), (platform) => backupCommand(platform, rest[0]!));
    }
    case 'restore': {
      if (!rest[0]) throw new UsageError('pds restore <folder>');
      return withPlatform(await createPlatform(config), (platform) => restoreCommand(platform, rest[0]!));
    }
    case 'jobs':
      return jobsCommand(config, rest, values);
    case 'reports':
      return reportsCommand(config, rest, values);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

async function withPlatform(platform: Platform, run: (platform: Platform) => Promise<number>): Promise<number> {
  try {
    return await run(platform);
  } finally {
    await platform.controlPlane.close();
  }
}

async function runServer(platform: Platform): Promise<number> {
  const started = performance.now();
  const { config } = platform;
  platform.store.clearStaging();
  let tokensFile: string | undefined;
  if (config.mode === 'dev') {
    const bar = progressBar();
    const { generated } = await seedDemo(platform, (done, total, label) => bar.update(done, total, label));
    if (generated) bar.finish('demo data generated and loaded');
    tokensFile = await writeDevTokens(platform);
  }
  const runtime = await startJobRuntime(platform, { workers: config.workers });
  const { events, warnings } = await startEvents(platform.db, platform.keys, config.mode);
  for (const warning of warnings) console.warn(`[pds] warning: ${warning}`);
  await recordAuditEvents(platform.db, events, platform.clock());
  // Checkpoints on a schedule (and on demand at GET /v1/audit/checkpoint).
  const checkpoints = setInterval(() => {
    platform.audit.checkpoint().catch((error: unknown) => console.error(`[pds] checkpoint failed: ${describeForLog(error)}`));
  }, 60_000);
  checkpoints.unref();
  // Deadlines pass and channels go idle without anyone calling: sweep so alerts reach regulators on time.
  const governance = setInterval(() => {
    sweepGovernance(platform).catch((error: unknown) => console.error(`[pds] governance sweep failed: ${describeForLog(error)}`));
    // Answers kept for Idempotency-Key retries are kept a day (src/products/call-replays.ts).
    platform.products.callReplays.purge(platform.db, platform.clock()).catch((error: unknown) => console.error(`[pds] purge of kept answers failed: ${describeForLog(error)}`));
    purgeRequestReplays(platform.db, platform.clock()).catch((error: unknown) => console.error(`[pds] purge of kept answers failed: ${describeForLog(error)}`));
    // Staged files older than an hour: a channel export nobody read, a load that died.
    try {
      platform.store.clearStaging();
    } catch (error) {
      console.error(`[pds] staging sweep failed: ${describeForLog(error)}`);
    }
  }, 10 * 60_000);
  governance.unref();
  const app = createApp(platform);
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  await new Promise<void>((resolve, reject) => {
    server.once('listening', () => resolve());
    server.once('error', (error: NodeJS.ErrnoException) => reject(error.code === 'EADDRINUSE' ? new PortInUse(config.host, config.port) : error));
  });
  const base = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${config.port}`;
  console.log(`public-data-sandbox listening on ${base} (${config.mode} mode, ${platform.controlPlane.kind}) after ${Math.round(performance.now() - started)} ms`);
  console.log(`  health   ${base}/healthz`);
  console.log(`  API docs ${base}/docs  (OpenAPI: ${base}/openapi.json)`);
  console.log(`  JWKS     ${base}/.well-known/jwks.json`);
  if (tokensFile) console.log(`  dev tokens for ${demoPrincipals.map((p) => p.key).join(', ')}: ${tokensFile}`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await runtime.stop();
  await platform.products.sealEvaluator.close();
  await platform.controlPlane.close();
  return 0;
}

async function runWorkers(platform: Platform, workers: number): Promise<number> {
  const runtime = await startJobRuntime(platform, { workers });
  console.log(`pds worker: ${workers} sandbox worker(s) taking jobs from ${platform.controlPlane.kind}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  await runtime.stop();
  await platform.controlPlane.close();
  return 0;
}

async function datasetsCommand(platform: Platform, args: string[], encodingName: string | undefined): Promise<number> {
  const [sub, datasetId, file] = args;
  if (sub === 'list') {
    for (const entry of await listCatalogue(platform.db)) {
      const latest = entry.versions.at(-1);
      console.log(
        `${entry.id.padEnd(18)} ${entry.grade.padEnd(9)} ${entry.institution.id.padEnd(22)} ` +
          (latest ? `v${latest.versionNumber} ${latest.rowCount} rows ${latest.contentHash.slice(0, 16)}…` : 'no versions'),
      );
    }
    return 0;
  }
  if (sub === 'load') {
    if (!datasetId || !file) throw new UsageError('pds datasets load <id> <file.csv|file.parquet>');
    const format = file.endsWith('.csv') ? 'csv' : file.endsWith('.parquet') ? 'parquet' : undefined;
    if (!format) throw new UsageError('the file must end in .csv or .parquet');
    const encoding = encodingName === undefined ? undefined : csvEncodingNamed(encodingName);
    if (encodingName !== undefined && (!encoding || format !== 'csv')) throw new UsageError('--encoding takes utf-8 or gb18030 (also for GBK and GB 2312), for a CSV file');
    const dataset = await findDataset(platform.db, datasetId);
    if (!dataset) throw new AppError('NOT_FOUND', `dataset ${datasetId} is not registered`);
    const stages = ['hashing', 'checking', 'writing', 'publishing', 'checking quality'];
    const bar = progressBar();
    const version = await loadDatasetVersion(
      { db: platform.db, store: platform.store, clock: platform.clock },
      {
        dataset,
        file: path.resolve(file),
        format,
        encoding,
        loadedBy: `cli:${os.userInfo().username}`,
        onProgress: (stage) => bar.update(stages.indexOf(stage), stages.length, stage),
      },
    );
    const quality = version.quality ? `; quality score ${version.quality.score ?? '–'}` : '';
    bar.finish(`loaded ${dataset.id} version ${version.versionNumber}: ${version.rowCount} rows, sha256 ${version.contentHash}${quality}`);
    // Arts. 9, 12: the source sees at once which rules its delivery fails (counts only).
    const [check] = version.quality?.passed === false ? await qualityHistory(platform.db, dataset.id) : [];
    for (const rule of check?.results.filter((result) => result.status === 'failed') ?? []) {
      console.log(`  quality rule failed: ${rule.label} — ${rule.violations} of ${rule.checked} rows`);
    }
    return 0;
  }
  throw new UsageError('pds datasets list | pds datasets load <id> <file>');
}

async function auditVerifyCommand(config: Config, options: { server?: string; token?: string; witness?: string }): Promise<number> {
  const { server, token } = remoteTarget(config, options, 'regulator');
  const witnessFile = path.resolve(options.witness ?? 'pds-witness.json');
  const witness: SignedCheckpoint[] = fs.existsSync(witnessFile) ? (JSON.parse(fs.readFileSync(witnessFile, 'utf8')) as { checkpoints: SignedCheckpoint[] }).checkpoints : [];
  const bar = progressBar();
  const snapshot = await fetchLogSnapshot({ server, token, witness, onProgress: (done, total) => bar.update(done, total, 'fetching the log') });
  bar.finish(`fetched ${snapshot.entries.length} leaves, ${snapshot.releases.length} releases, ${witness.length} earlier checkpoint(s)`);
  const report = await verifyLog(snapshot);
  for (const finding of report.findings) console.log(`${finding.ok ? 'ok  ' : 'FAIL'} ${finding.check}: ${finding.detail}`);
  if (report.ok) {
    const known = new Map(witness.map((checkpoint) => [checkpoint.tree_size, checkpoint]));
    known.set(snapshot.checkpoint.tree_size, snapshot.checkpoint);
    fs.writeFileSync(witnessFile, JSON.stringify({ checkpoints: [...known.values()].sort((a, b) => a.tree_size - b.tree_size) }, null, 2) + '\n');
    console.log(`verified; the witness now holds ${known.size} checkpoint(s) in ${witnessFile}`);
    return 0;
  }
  console.log('verification FAILED');
  return 1;
}

async function backupCommand(platform: Platform, folder: string): Promise<number> {
  const bar = progressBar();
  const manifest = await createBackup(platform, folder, { actor: `cli:${os.userInfo().username}`, onProgress: (done, total, step) => bar.update(done, total, step) });
  const { rows, tables, snapshots, bytes } = backupSummary(manifest);
  bar.finish(`backed up ${rows} rows in ${tables} tables and ${snapshots} snapshots (${(bytes / 2 ** 20).toFixed(1)} MiB) to ${path.resolve(folder)}`);
  return 0;
}

async function restoreCommand(platform: Platform, folder: string): Promise<number> {
  const bar = progressBar();
  const manifest = await restoreBackup(platform, folder, { actor: `cli:${os.userInfo().username}`, onProgress: (done, total, step) => bar.update(done, total, step) });
  bar.finish(`restored the backup of ${manifest.createdAt}: ${manifest.tables.length} tables, ${manifest.snapshots.length} snapshots; start the server and run pds audit verify`);
  return 0;
}

async function tokenCommand(platform: Platform, principalId: string | undefined, ttlSeconds: number | undefined): Promise<number> {
  if (!principalId) throw new UsageError('pds token <principal-id>');
  // Whoever holds the token key file: recorded by the operating-system account that ran the command.
  console.log(await issueToken(platform, principalId, `cli:${os.userInfo().username}`, ttlSeconds));
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const parseArgsError = typeof (error as { code?: unknown }).code === 'string' && (error as { code: string }).code.startsWith('ERR_PARSE_ARGS');
    // These messages are written by this project (or by node's argument parser) and carry no data.
    if (error instanceof ConfigError || error instanceof UsageError || error instanceof CommandUsageError || parseArgsError) {
      const usageProblem = (error as Error).message;
      console.error(`pds: ${usageProblem}`);
      process.exit(2);
    }
    if (error instanceof ControlPlaneInUse || error instanceof PortInUse || error instanceof KeyError) {
      const conflict = error.message;
      console.error(`pds: ${conflict}`);
      process.exit(1);
    }
    if (error instanceof AppError) {
      const problem = error.message;
      console.error(`pds: ${error.code}: ${problem}`);
      for (const detail of error.details) console.error(`  ${detail.path ?? ''} ${detail.problem}`);
      process.exit(1);
    }
    console.error(`pds: failed: ${describeForLog(error)}`);
    process.exit(1);
  },
);
