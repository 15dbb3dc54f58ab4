import { tValue } from './i18n.js';
/** A few DOM helpers: the console builds its pages from data with these, never from HTML strings (no injection). */
type Child = Node | string | number | null | undefined | false;
type Attributes = Record<string, string | number | boolean | ((event: Event) => void) | undefined>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Attributes = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === false) continue;
    if (typeof value === 'function') element.addEventListener(name.replace(/^on/, '').toLowerCase(), value);
    // The console's CSP forbids style attributes; styles set through the CSSOM are allowed.
    else if (name === 'style') element.style.cssText = String(value);
    else if (value === true) element.setAttribute(name, '');
    else element.setAttribute(name, String(value));
  }
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child instanceof Node ? child : String(child));
  return element;
}

export function table(headers: Child[], rows: Child[][], attributes: Attributes = {}): HTMLTableElement {
  return h('table', attributes, h('thead', {}, h('tr', {}, ...headers.map((header) => h('th', {}, header)))), h('tbody', {}, ...rows.map((row) => h('tr', {}, ...row.map((cell) => h('td', {}, cell))))));
}

export const badge = (text: string, tone: 'ok' | 'warn' | 'bad' | 'info' = 'info') => h('span', { class: `badge ${tone}` }, text);

/** A status as a badge in the chosen language, coloured by what it means; the API's word stays as its title. */
export const statusBadge = (status: string, tone = statusTone(status), words: 'status' | 'disputeStatus' | 'demandStatus' = 'status') => {
  const element = badge(tValue(words, status), tone);
  element.title = status;
  return element;
};

export function statusTone(status: string): 'ok' | 'warn' | 'bad' | 'info' {
  if (status === 'released' || status === 'published' || status === 'active') return 'ok';
  if (status === 'rejected' || status === 'failed' || status === 'withheld' || status === 'retired' || status === 'suspended' || status === 'disabled') return 'bad';
  if (status === 'in_review' || status === 'draft' || status === 'approved') return 'warn';
  return 'info';
}

export { formatTime } from './i18n.js';

/**
 * Saves a CSV through the browser. Excel on Chinese Windows reads a CSV without a byte order mark as GBK and shows
 * every Chinese name garbled; a UTF-8 BOM first makes it read UTF-8 (pandas, R and Excel elsewhere skip it too).
 */
export function saveCsv(content: BlobPart, filename: string): void {
  h('a', { href: URL.createObjectURL(new Blob(['\uFEFF', content], { type: 'text/csv;charset=utf-8' })), download: filename }).click();
}
