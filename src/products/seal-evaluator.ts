import { Worker } from 'node:worker_threads';
import { AppError } from '../errors/app-error.js';
import type { EncryptedUpload } from './seal-uploads.js';

/**
 * The API side of the SEAL worker thread (seal-thread.ts): checks and evaluations of encrypted product calls run
 * there, off the thread that answers plain calls. One thread, started on first use and started again after a
 * crash (the calls in flight then fail with a 500; no partial answer can leave, since an answer is only returned
 * whole). Requests are answered in order; SEAL is single-threaded per evaluation anyway.
 */
export type SealRequest =
  | { op: 'check'; id: number; scheme: 'bfv' | 'ckks'; upload: EncryptedUpload }
  | { op: 'checkKey'; id: number; scheme: 'bfv' | 'ckks'; publicKey: Uint8Array }
  | { op: 'verify'; id: number; actual: bigint[] | undefined; fieldCount: number }
  | { op: 'score'; id: number; coefficients: number[] }
  | { op: 'discard'; id: number };
export type SealReply = { id: number; ok: true; answer?: Uint8Array } | { id: number; ok: false; code: AppError['code']; message: string };

/** A checked upload held by the thread, to be evaluated once (or discarded). */
export type CheckedUpload = { id: number; scheme: 'bfv' | 'ckks' };

export function createSealEvaluator() {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, { thread: Worker; resolve: (answer: Uint8Array | undefined) => void; reject: (error: unknown) => void }>();

  function thread(): Worker {
    if (worker) return worker;
    // The thread runs TypeScript through tsx, like the rest of the service: a bootstrap registers it first.
    const script = new URL('./seal-thread.ts', import.meta.url);
    const bootstrap = `import(${JSON.stringify(import.meta.resolve('tsx/esm/api'))}).then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); })`;
    const started = new Worker(bootstrap, { eval: true });
    started.on('message', (reply: SealReply) => {
      const waiting = pending.get(reply.id);
      if (!waiting) return;
      pending.delete(reply.id);
      if (pending.size === 0) started.unref();
      if (reply.ok) waiting.resolve(reply.answer === undefined ? undefined : new Uint8Array(reply.answer));
      else waiting.reject(reply.code === 'INTERNAL' ? new Error('the SEAL thread could not evaluate the request') : new AppError(reply.code, reply.message));
    });
    const fail = () => {
      if (worker === started) worker = undefined;
      for (const [id, waiting] of pending) {
        if (waiting.thread !== started) continue;
        pending.delete(id);
        waiting.reject(new Error('the SEAL thread stopped'));
      }
    };
    started.on('error', fail);
    started.on('exit', fail);
    worker = started;
    return started;
  }

  function call(request: SealRequest): Promise<Uint8Array | undefined> {
    return new Promise((resolve, reject) => {
      const target = thread();
      // The thread keeps the process alive only while it has work: an idle one must not hold up an exit.
      if (pending.size === 0) target.ref();
      pending.set(request.id, { thread: target, resolve, reject });
      target.postMessage(request);
    });
  }

  return {
    /** Loads and validates an upload in the thread (CIPHERTEXT_REJECTED when it is not acceptable). */
    async check(scheme: 'bfv' | 'ckks', upload: EncryptedUpload): Promise<CheckedUpload> {
      const id = nextId++;
      await call({ op: 'check', id, scheme, upload });
      return { id, scheme };
    },
    /** Checks a public key to be registered (CIPHERTEXT_REJECTED when it is not acceptable); keeps nothing. */
    async checkKey(scheme: 'bfv' | 'ckks', publicKey: Uint8Array): Promise<void> {
      await call({ op: 'checkKey', id: nextId++, scheme, publicKey });
    },
    async verify(checked: CheckedUpload, actual: bigint[] | undefined, fieldCount: number): Promise<Uint8Array> {
      return (await call({ op: 'verify', id: checked.id, actual, fieldCount }))!;
    },
    async score(checked: CheckedUpload, coefficients: number[]): Promise<Uint8Array> {
      return (await call({ op: 'score', id: checked.id, coefficients }))!;
    },
    /** Requests sent to the thread and not yet answered. */
    inFlight: () => pending.size,
    /** Frees a checked upload that will not be evaluated (the call was refused after the check). */
    discard(checked: CheckedUpload): void {
      if (worker) void call({ op: 'discard', id: checked.id }).catch(() => {});
    },
    async close(): Promise<void> {
      const current = worker;
      worker = undefined;
      await current?.terminate();
    },
  };
}

export type SealEvaluator = ReturnType<typeof createSealEvaluator>;
