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

export async function api<T = any>(method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: { ...headers, ...(token() ? { authorization: `Bearer ${token()}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  const json = text && response.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, json?.error?.code ?? 'HTTP_ERROR', json?.error?.message ?? `HTTP ${response.status}`, json?.error?.details ?? []);
  return json as T;
}

/** Sends a file as the request body (a dataset delivery), with the media type that says how to read it. */
export async function upload<T = any>(path: string, file: Blob, contentType: string): Promise<T> {
  const response = await fetch(path, { method: 'POST', headers: { 'content-type': contentType, ...(token() ? { authorization: `Bearer ${token()}` } : {}) }, body: file });
  const json = (await response.json().catch(() => ({}))) as Record<string, any>;
  if (!response.ok) throw new ApiError(response.status, json?.error?.code ?? 'HTTP_ERROR', json?.error?.message ?? `HTTP ${response.status}`, json?.error?.details ?? []);
  return json as T;
}
