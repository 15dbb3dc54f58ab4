/**
 * Time from `npm start` to serving on an existing data directory, and the server's idle memory.
 *
 * Run: npm run bench -- startup   (or: npx tsx bench/startup.ts)
 * The first run creates a data directory at a small demo scale (not timed); then the server is started
 * several times on it and each start is timed until /healthz answers. Idle memory is the server's RSS after
 * it has served and settled, read from /proc.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dataDir = process.env.BENCH_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'pds-bench-startup-'));
const scale = process.env.PDS_DEMO_SCALE ?? '0.05';
const runs = Number(process.env.BENCH_RUNS ?? 5);
const port = 18_000 + Math.floor(Math.random() * 1000);

async function startAndMeasure(): Promise<{ millisecondsToServe: number; idleRssMiB: number }> {
  const started = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/pds.ts'), 'serve'], {
    cwd: root,
    env: { ...process.env, DATA_DIR: dataDir, PORT: String(port), PDS_DEMO_SCALE: scale, DATABASE_URL: '' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  try {
    let millisecondsToServe = -1;
    for (let attempt = 0; attempt < 6000; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${port}/healthz`);
        if (response.ok) {
          millisecondsToServe = performance.now() - started;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    if (millisecondsToServe < 0) throw new Error('the server did not answer /healthz');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const status = fs.readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { millisecondsToServe, idleRssMiB: rssKiB / 1024 };
  } finally {
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

console.log(`data directory ${dataDir} (demo scale ${scale})`);
const first = await startAndMeasure();
console.log(`first run (generates and loads demo data): ${(first.millisecondsToServe / 1000).toFixed(1)} s`);
const times: number[] = [];
let rss = 0;
for (let i = 0; i < runs; i++) {
  const run = await startAndMeasure();
  times.push(run.millisecondsToServe);
  rss = run.idleRssMiB;
}
times.sort((a, b) => a - b);
console.log(`start to serving on an existing data directory: median ${(times[Math.floor(times.length / 2)]! / 1000).toFixed(2)} s (min ${(times[0]! / 1000).toFixed(2)} s, max ${(times.at(-1)! / 1000).toFixed(2)} s, ${runs} runs)`);
console.log(`idle memory (RSS) of the server: ${rss.toFixed(0)} MiB`);
if (!process.env.BENCH_DATA_DIR) fs.rmSync(dataDir, { recursive: true, force: true });
