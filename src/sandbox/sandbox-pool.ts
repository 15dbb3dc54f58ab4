import { fork, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SandboxReply, SandboxRequest } from './sandbox-protocol.js';

export type SandboxOutcome = Extract<SandboxReply, { type: 'result' }>;

const processScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sandbox-process.ts');

/** The only variables a sandbox process sees: no database URL, no key paths, no tokens. */
function scrubbedEnvironment(): NodeJS.ProcessEnv {
  return { PATH: '/usr/bin:/bin', TZ: 'UTC', LANG: 'C.UTF-8', HOME: os.tmpdir() };
}

type Slot = { child: ChildProcess; ready: Promise<void>; busy: boolean };

/**
 * A pool of warm sandbox processes, one job each at a time. A job that passes its wall-time limit is first
 * interrupted inside DuckDB (by the process itself); if the process does not answer within a grace period it is
 * killed. A process that dies mid-job fails that job as a system error and is replaced; other jobs in other
 * processes are unaffected.
 */
export function createSandboxPool(options: { size: number; graceSeconds?: number }) {
  const slots: Slot[] = [];
  const waiting: Array<(slot: Slot) => void> = [];
  const grace = (options.graceSeconds ?? 3) * 1000;
  /** Jobs a sandbox process has acknowledged and is running now. */
  const running = new Set<string>();
  const sandboxDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pds-sandbox-'));
  let closed = false;

  function spawnSlot(): Slot {
    const child = fork(processScript, [], {
      // tsx is resolved here, since the sandbox runs in an empty folder where bare specifiers do not resolve.
      execArgv: ['--import', import.meta.resolve('tsx'), '--max-old-space-size=512'],
      env: scrubbedEnvironment(),
      cwd: sandboxDir,
      // Nothing the sandbox prints reaches the service's logs: a crash message could quote data.
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
      serialization: 'advanced',
    });
    const ready = new Promise<void>((resolve, reject) => {
      child.once('message', (message: SandboxReply) => (message.type === 'ready' ? resolve() : reject(new Error('sandbox did not start'))));
      child.once('exit', () => reject(new Error('sandbox exited during start-up')));
    });
    ready.catch(() => {});
    const slot: Slot = { child, ready, busy: false };
    child.once('exit', () => {
      const index = slots.indexOf(slot);
      if (index >= 0) slots.splice(index, 1);
    });
    slots.push(slot);
    return slot;
  }

  const alive = (slot: Slot) => slot.child.exitCode === null && slot.child.signalCode === null && slot.child.connected;

  /**
   * Drops a process that cannot take a job. A process killed between jobs can look alive until its exit event
   * is processed; without this, the job's retries would all be handed to the same dead process.
   */
  function discard(slot: Slot) {
    const index = slots.indexOf(slot);
    if (index >= 0) slots.splice(index, 1);
    slot.child.kill('SIGKILL');
  }

  async function acquire(): Promise<Slot> {
    for (const dead of slots.filter((slot) => !slot.busy && !alive(slot))) slots.splice(slots.indexOf(dead), 1);
    const idle = slots.find((slot) => !slot.busy && alive(slot));
    if (idle) {
      idle.busy = true;
      return idle;
    }
    if (slots.length < options.size) {
      const slot = spawnSlot();
      slot.busy = true;
      return slot;
    }
    return new Promise((resolve) => waiting.push(resolve));
  }

  function release(slot: Slot) {
    slot.busy = false;
    if (closed) return;
    const next = waiting.shift();
    if (!next) return;
    if (alive(slot) && slots.includes(slot)) {
      slot.busy = true;
      next(slot);
    } else {
      const fresh = spawnSlot();
      fresh.busy = true;
      next(fresh);
    }
  }

  async function runOnce(request: Omit<SandboxRequest, 'type'>): Promise<{ outcome: SandboxOutcome; neverStarted: boolean }> {
    const slot = await acquire();
    try {
      await slot.ready.catch(() => undefined);
      return await new Promise((resolve) => {
        const failed = (detail: string, neverStarted: boolean) => ({
          outcome: { type: 'result', jobId: request.jobId, ok: false, kind: 'system_error', internalDetail: detail } as SandboxOutcome,
          neverStarted,
        });
        let started = false;
        let killedForTime = false;
        const killer = setTimeout(() => {
          killedForTime = true;
          slot.child.kill('SIGKILL');
        }, request.limits.wallSeconds * 1000 + grace);
        const onMessage = (message: SandboxReply) => {
          if (message.type === 'started' && message.jobId === request.jobId) {
            started = true;
            running.add(request.jobId);
          }
          if (message.type !== 'result' || message.jobId !== request.jobId) return;
          cleanup();
          resolve({ outcome: message, neverStarted: false });
        };
        const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
          cleanup();
          if (killedForTime) {
            resolve({
              outcome: { type: 'result', jobId: request.jobId, ok: false, kind: 'time_limit', internalDetail: 'killed after the wall-time limit and grace period' },
              neverStarted: false,
            });
          } else {
            resolve(failed(`sandbox process exited (code ${code}, signal ${signal})`, !started));
          }
        };
        const cleanup = () => {
          running.delete(request.jobId);
          clearTimeout(killer);
          slot.child.off('message', onMessage);
          slot.child.off('exit', onExit);
        };
        if (!alive(slot)) {
          cleanup();
          discard(slot);
          resolve(failed('sandbox process was gone before the job started', true));
          return;
        }
        slot.child.on('message', onMessage);
        slot.child.once('exit', onExit);
        slot.child.send({ type: 'run', ...request } satisfies SandboxRequest, (error) => {
          if (error) {
            cleanup();
            discard(slot);
            resolve(failed('the job could not be handed to the sandbox process', true));
          }
        });
      });
    } finally {
      release(slot);
    }
  }

  return {
    /** Starts the processes ahead of the first job, so that the first job does not pay for start-up. */
    async warm(): Promise<void> {
      while (slots.length < options.size) spawnSlot();
      await Promise.all(slots.map((slot) => slot.ready));
    },

    async run(request: Omit<SandboxRequest, 'type'>): Promise<SandboxOutcome> {
      if (closed) throw new Error('the sandbox pool is closed');
      // A process that died between jobs (before it took this one) is replaced and the job handed on;
      // one that dies while running the job fails the job, which is never run twice.
      for (let attempt = 1; ; attempt++) {
        const { outcome, neverStarted } = await runOnce(request);
        if (!neverStarted || attempt >= 3) return outcome;
      }
    },

    /** Whether a sandbox process has taken this job and is running it now. */
    isRunning: (jobId: string) => running.has(jobId),

    /** Process ids, for tests that kill a worker on purpose. */
    pids: () => slots.map((slot) => slot.child.pid),

    async close(): Promise<void> {
      closed = true;
      await Promise.all(
        slots.map(
          (slot) =>
            new Promise<void>((resolve) => {
              if (slot.child.exitCode !== null || slot.child.signalCode !== null) return resolve();
              slot.child.once('exit', () => resolve());
              slot.child.kill('SIGKILL');
            }),
        ),
      );
      fs.rmSync(sandboxDir, { recursive: true, force: true });
    },
  };
}

export type SandboxPool = ReturnType<typeof createSandboxPool>;
