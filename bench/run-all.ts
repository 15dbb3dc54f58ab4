/** Runs the benchmarks named on the command line (default: all), one after another. Benchmarks are not tests. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const available = fs.readdirSync(here).filter((file) => file.endsWith('.ts') && file !== 'run-all.ts').map((file) => file.slice(0, -3));
const chosen = process.argv.slice(2).length > 0 ? process.argv.slice(2) : available;
for (const name of chosen) {
  if (!available.includes(name)) {
    console.error(`no benchmark ${name}; available: ${available.join(', ')}`);
    process.exit(2);
  }
  console.log(`\n== bench/${name}`);
  const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(here, `${name}.ts`)], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}
