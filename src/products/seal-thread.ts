/**
 * The homomorphic evaluations of product calls, in a worker thread of the API process (seal-evaluator.ts starts
 * it). An encrypted verification takes 60–80 ms of SEAL work and a score 15–25 ms; on the API thread that time
 * stalled every other call in flight. The protocol has two steps so that a request is checked before any quota
 * is spent and evaluated only after: `check` loads and validates the upload and holds it under an id; `verify`
 * or `score` evaluates and frees it; `discard` frees it when the call was refused in between. `checkKey` checks a
 * public key a consumer registers for later calls, and keeps nothing.
 */
import { parentPort } from 'node:worker_threads';
import { AppError } from '../errors/app-error.js';
import { createBfvContext, type BfvContext } from './client/bfv.js';
import { createCkksContext, type CkksContext } from './client/ckks.js';
import { checkScoringRequest, scoreEncrypted } from './encrypted-scoring.js';
import { checkEncryptedRequest, evaluateEncryptedVerification } from './encrypted-verification.js';
import { checkSeededPublicKey, type LoadedUpload } from './seal-uploads.js';
import { loadSeal } from './seal-loader.js';
import type { SealReply, SealRequest } from './seal-evaluator.js';

let bfv: Promise<BfvContext> | undefined;
let ckks: Promise<CkksContext> | undefined;
const bfvContext = () => (bfv ??= loadSeal().then(createBfvContext));
const ckksContext = () => (ckks ??= loadSeal().then(createCkksContext));
const held = new Map<number, { scheme: 'bfv' | 'ckks'; loaded: LoadedUpload }>();

function take(id: number, scheme: 'bfv' | 'ckks'): LoadedUpload {
  const entry = held.get(id);
  if (!entry || entry.scheme !== scheme) throw new Error('no checked upload under this id');
  held.delete(id);
  return entry.loaded;
}

async function handle(request: SealRequest): Promise<Uint8Array | undefined> {
  switch (request.op) {
    case 'check':
      held.set(request.id, {
        scheme: request.scheme,
        loaded: request.scheme === 'bfv' ? checkEncryptedRequest(await bfvContext(), request.upload) : checkScoringRequest(await ckksContext(), request.upload),
      });
      return undefined;
    case 'checkKey':
      checkSeededPublicKey(request.scheme === 'bfv' ? await bfvContext() : await ckksContext(), request.publicKey);
      return undefined;
    case 'verify':
      return evaluateEncryptedVerification(await bfvContext(), take(request.id, 'bfv'), request.actual, request.fieldCount);
    case 'score':
      return scoreEncrypted(await ckksContext(), take(request.id, 'ckks'), request.coefficients);
    case 'discard': {
      const entry = held.get(request.id);
      held.delete(request.id);
      entry?.loaded.ciphertext.delete();
      entry?.loaded.publicKey.delete();
      return undefined;
    }
  }
}

parentPort!.on('message', (request: SealRequest) => {
  handle(request).then(
    (answer) => parentPort!.postMessage({ id: request.id, ok: true, ...(answer ? { answer } : {}) } satisfies SealReply),
    // A refusal (CIPHERTEXT_REJECTED) travels with its code and its message, which quote no data; anything
    // else is reported without its text.
    (error: unknown) =>
      parentPort!.postMessage(
        (error instanceof AppError ? { id: request.id, ok: false, code: error.code, message: error.message } : { id: request.id, ok: false, code: 'INTERNAL', message: 'the evaluation failed' }) satisfies SealReply,
      ),
  );
});
