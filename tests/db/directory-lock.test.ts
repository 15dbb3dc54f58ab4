import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ControlPlaneInUse, lockDirectory } from '../../src/db/directory-lock.js';

const directory = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'pds-lock-')), 'control-plane');
const lockFile = `${directory}.lock`;
afterEach(() => fs.rmSync(lockFile, { force: true }));

describe('the embedded control plane lock', () => {
  it('refuses a second holder while the first is alive, naming its process', () => {
    const release = lockDirectory(directory);
    try {
      expect(() => lockDirectory(directory)).toThrow(ControlPlaneInUse);
      expect(() => lockDirectory(directory)).toThrow(`in use by process ${process.pid}`);
    } finally {
      release();
    }
  });

  it('is free again once released, and the lock file is gone', () => {
    lockDirectory(directory)();
    expect(fs.existsSync(lockFile)).toBe(false);
    const release = lockDirectory(directory);
    expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid).toBe(process.pid);
    release();
  });

  it('takes over a lock left by a process that is gone', () => {
    // Process ids are at most 2^22 on Linux; this one cannot be running.
    fs.writeFileSync(lockFile, JSON.stringify({ pid: 2 ** 22 + 1, command: 'serve', since: '2026-01-01T00:00:00Z' }));
    const release = lockDirectory(directory);
    expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid).toBe(process.pid);
    release();
  });

  it('takes over a lock file left half-written', () => {
    fs.writeFileSync(lockFile, '{"pid": 12');
    const release = lockDirectory(directory);
    expect(JSON.parse(fs.readFileSync(lockFile, 'utf8')).pid).toBe(process.pid);
    release();
  });
});
