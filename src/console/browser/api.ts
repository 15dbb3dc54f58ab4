import { describeRefusal, detailText } from './error-meanings.js';

/** The console's only way to the server: the same public API as any client, with the signed-in bearer token. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Array<{ path?: string; problem: string }> = [],
  ) {
    super(message);
  }
}

const tokenKey = 'pds-token';
export const token = () => sessionStorage.getItem(tokenKey);
export const setToken = (value: string | null) => (value ? sessionStorage.setItem(tokenKey, value) : sessionStorage.removeItem(tokenKey));

/**
 * Changes in flight, by method, path, body and headers. A second identical change sent before the first is
 * answered (a double click, a button pressed twice) gets the first one's answer instead of being sent again: a
 * double click on "submit" files one sharing request, one dispute, one registration, not two. Sent again once the
 * first is answered, it is a new request.
 */
const inFlight = new Map<string, Promise<unknown>>();

export function api<T = any>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  const request = () => send<T>(path, method, text === undefined ? headers : { ...headers, 'content-type': 'application/json' }, text);
  if (method === 'GET') return request();
  const key = JSON.stringify([method, path, text ?? null, headers]);
  const pending = inFlight.get(key);
  if (pending) return pending as Promise<T>;
  const sent = request().finally(() => inFlight.delete(key));
  inFlight.set(key, sent);
  return sent;
}

/** Sends a file as the request body (a dataset delivery), with the media type that says how to read it. */
export function upload<T = any>(path: string, file: Blob, contentType: string): Promise<T> {
  return send<T>(path, 'POST', { 'content-type': contentType }, file);
}

/** One request with the bearer token; the answer parsed (JSON or text), or the server's refusal as an ApiError. */
async function send<T>(path: string, method: string, headers: Record<string, string>, body: BodyInit | undefined): Promise<T> {
  const response = await fetch(path, { method, headers: { ...headers, ...(token() ? { authorization: `Bearer ${token()}` } : {}) }, ...(body !== undefined ? { body } : {}) });
  const text = await response.text();
  const json = text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, json?.error?.code ?? 'HTTP_ERROR', json?.error?.message ?? `HTTP ${response.status}`, json?.error?.details ?? []);
  return json as T;
}

/**
 * A refusal as a person reads it: what the code means (in Chinese; the English message says it already), the code,
 * the server's message and each detail with the field it names; anything else is rethrown.
 */
export const errorText = (error: unknown) => {
  if (error instanceof ApiError) return `${describeRefusal(error.code, error.message)}${error.details.length ? ` (${error.details.map(detailText).join('; ')})` : ''}`;
  throw error;
};
