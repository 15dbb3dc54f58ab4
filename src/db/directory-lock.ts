import fs from 'node:fs';

/**
 * The embedded control plane belongs to one process at a time. PGlite is a single PostgreSQL backend inside one
 * process, with no postmaster.pid to stop a second one: a `pds datasets load` next to a running `pds serve` on the
 * same DATA_DIR opened the same files with buffers of its own, and the two wrote over each other's pages. A lock
 * file beside the directory names the holder; a holder that died (its process is gone) is replaced.
 */
export class ControlPlaneInUse extends Error {
  constructor(directory: string, holder: LockHolder) {
    super(
      `the embedded database in ${directory} is in use by process ${holder.pid} (${holder.command}, since ${holder.since}); ` +
        'stop it first, use its API (pds jobs … --server), or set DATABASE_URL so that several processes share a PostgreSQL server',
    );
  }
}

type LockHolder = { pid: number; command: string; since: string };

/** Takes the lock of `directory` for this process, or throws ControlPlaneInUse. Returns the release function. */
export function lockDirectory(directory: string): () => void {
  const lockFile = `${directory}.lock`;
  // Only the command's name (serve, datasets, token …): its other arguments may hold a path or a token.
  const command = process.argv.slice(2).find((argument) => /^[a-z][a-z-]{0,30}$/.test(argument)) ?? 'node';
  const mine: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockFile, JSON.stringify(mine), { flag: 'wx', mode: 0o600 });
      const release = () => {
        if (readHolder(lockFile)?.pid === process.pid) fs.rmSync(lockFile, { force: true });
        process.off('exit', release);
      };
      // A process that exits without closing (an error, process.exit) still lets go; a killed one is found dead.
      process.on('exit', release);
      return release;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const holder = readHolder(lockFile);
      // This process counts too: a second PGlite on the same files in one process is the same conflict.
      if (holder && isAlive(holder.pid)) throw new ControlPlaneInUse(directory, holder);
      // Left by a process that is gone (or unreadable, half-written by one that died): take it over.
      fs.rmSync(lockFile, { force: true });
    }
  }
  throw new Error('could not take the control-plane lock');
}

function readHolder(lockFile: string): LockHolder | undefined {
  try {
    const holder = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as LockHolder;
    return Number.isInteger(holder.pid) ? holder : undefined;
  } catch {
    return undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: the process exists but belongs to another user.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
