import type { SEALLibrary } from 'node-seal/implementation/seal.js';
import { createVerificationClient, type VerificationClient } from '../../products/client/verification-client.js';

/**
 * Encrypted calls run in this dedicated worker: node-seal's WASM glue evaluates generated code, which the
 * console page's Content-Security-Policy forbids; the worker is served with its own policy that allows it, so the
 * page itself keeps the strict one. The page also stays responsive while keys are made and claims encrypted.
 * The claims are encrypted here, in the browser, and never sent in clear. One client serves the signed-in
 * consumer's calls, so its key pairs (and their registered public keys) are made once per sign-in, not per call.
 */
declare function importScripts(...urls: string[]): void;
type Request = { id: number; kind: 'verify' | 'score'; productId: string; input: Record<string, string | number>; purpose: string; token: string };

importScripts('/console/assets/seal.js');
let seal: Promise<SEALLibrary> | undefined;
let current: { token: string; client: VerificationClient } | undefined;

self.onmessage = async (event: MessageEvent<Request>) => {
  const request = event.data;
  try {
    seal ??= (globalThis as unknown as { SEAL: () => Promise<SEALLibrary> }).SEAL();
    if (current?.token !== request.token) {
      await current?.client.close();
      current = { token: request.token, client: createVerificationClient({ baseUrl: location.origin, token: request.token, seal: await seal }) };
    }
    const { client } = current;
    const result =
      request.kind === 'verify'
        ? await client.verifyEncrypted(request.productId, request.input as Record<string, string>, request.purpose)
        : await client.scoreEncrypted(request.productId, request.input, request.purpose);
    postMessage({ id: request.id, ok: true, result: { ...result, payload: result.payload } });
  } catch (error) {
    postMessage({ id: request.id, ok: false, code: (error as { code?: string }).code ?? 'CLIENT_ERROR', message: (error as Error).message, details: (error as { details?: unknown[] }).details ?? [] });
  }
};
