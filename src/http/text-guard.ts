import type { MiddlewareHandler } from 'hono';
import { AppError } from '../errors/app-error.js';

/**
 * Text the control plane cannot store is refused at the boundary, with the place it was found. PostgreSQL's text
 * cannot hold U+0000 and its jsonb refuses an unpaired UTF-16 surrogate; without this check such a character in
 * any id, purpose, SQL or name reached the database and the caller got a 500 for its own bad input.
 *
 * Both characters can only arrive escaped: a URL carries U+0000 as `%00` (Node's parser refuses a raw one), and
 * JSON as `\u0000` or `\udXXX` (raw control characters are not valid JSON, and decoding UTF-8 replaces anything
 * that would decode to a surrogate). So the URL is checked for `%00`, and a JSON body is walked only when its
 * text holds a `\u` escape at all; the handler's own `json()` then parses the text this read left cached.
 */
export function refuseUnstorableText(): MiddlewareHandler {
  return async (c, next) => {
    if (/%00/.test(c.req.url)) {
      throw new AppError('VALIDATION_FAILED', 'the request path or query is not valid', [
        { path: 'url', problem: 'contains the character U+0000 (%00), which no text field can hold' },
      ]);
    }
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD' && isJson(c.req.header('content-type'))) {
      const text = await c.req.text();
      if (text.includes('\\u')) {
        const where = unstorableTextIn(parsedOrUndefined(text));
        if (where !== undefined) {
          throw new AppError('VALIDATION_FAILED', 'the request body is not valid', [
            { path: where || '(root)', problem: 'contains the character U+0000 or an unpaired surrogate, which no text field can hold' },
          ]);
        }
      }
    }
    return next();
  };
}

const jsonMediaType = /^application\/([\w.-]+\+)?json$/i;
const isJson = (contentType: string | undefined) => contentType !== undefined && jsonMediaType.test(contentType.split(';')[0]!.trim());

/** Malformed JSON is left for the route's validator, which refuses it with its usual error. */
function parsedOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

const unstorable = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** The dotted path of the first string or key holding an unstorable character, or undefined when there is none. */
export function unstorableTextIn(value: unknown, path = ''): string | undefined {
  if (typeof value === 'string') return unstorable.test(value) ? path : undefined;
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, entry] of Object.entries(value)) {
    if (unstorable.test(key)) return path;
    // The caller's own keys, cut short: a path names a place, it need not repeat a long key whole.
    const at = path ? `${path}.${key.slice(0, 64)}` : key.slice(0, 64);
    const found = unstorableTextIn(entry, at);
    if (found !== undefined) return found;
  }
  return undefined;
}
