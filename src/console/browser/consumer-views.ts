import { createVerificationClient } from '../../products/client/verification-client.js';
import type { QuotaStanding } from '../../products/shared-quotas.js';
import { detailText, errorMeaning } from './error-meanings.js';
import { api, ApiError, token } from './api.js';
import { formatFigure } from './figures.js';
import { badge, formatTime, h, table } from './dom.js';
import { currentLanguage, inLanguage, t, tValue } from './i18n.js';

/** Consumer pages: the product catalogue with a "try it" form (plain, or encrypted in this browser) and usage. */
let worker: Worker | undefined;
let nextId = 0;
/** Runs an encrypted call in the SEAL worker (see seal-worker.ts) and waits for its answer. */
function inWorker(kind: 'verify' | 'score', productId: string, input: Record<string, string | number>, purpose: string): Promise<any> {
  worker ??= new Worker('/console/assets/seal-worker.js');
  const id = ++nextId;
  return new Promise((resolve, reject) => {
    const listener = (event: MessageEvent) => {
      if (event.data.id !== id) return;
      worker!.removeEventListener('message', listener);
      if (event.data.ok) resolve(event.data.result);
      else reject(Object.assign(new Error(event.data.message), { code: event.data.code, details: event.data.details }));
    };
    worker!.addEventListener('message', listener);
    worker!.postMessage({ id, kind, productId, input, purpose, token: token() ?? '' });
  });
}

export async function productCataloguePage(): Promise<HTMLElement> {
  const { products } = await api<{ products: any[] }>('GET', '/v1/products');
  const page = h('div', { class: 'grid' });
  for (const product of products.filter((candidate) => candidate.status === 'published')) page.append(productCard(product));
  return h('div', {}, h('h2', {}, t('products')), page);
}

function productCard(product: any): HTMLElement {
  const properties = Object.entries(product.inputSchema.properties as Record<string, { type: string; enum?: string[]; description?: string; 'x-description-zh'?: string; maxLength?: number }>);
  const fields = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const form = h('div', { class: 'form' });
  for (const [name, schema] of properties) {
    const value = String(product.example?.[name] ?? '');
    // A model's category is chosen among the values it was fitted on.
    const input = schema.enum
      ? h('select', { name }, ...schema.enum.map((option) => h('option', { value: option, ...(option === value ? { selected: true } : {}) }, option)))
      : h('input', { name, value, ...(schema.maxLength ? { maxlength: schema.maxLength } : {}) });
    fields.set(name, input);
    const description = currentLanguage() === 'zh' ? (schema['x-description-zh'] ?? schema.description) : schema.description;
    form.append(h('label', {}, `${name}`, description ? h('small', { class: 'muted' }, ` — ${description}`) : null), input);
  }
  const answer = h('div', { class: 'answer' });
  const texts = () => Object.fromEntries([...fields].map(([name, input]) => [name, input.value]));
  const features = () => Object.fromEntries([...fields].map(([name, input]) => [name, input instanceof HTMLSelectElement ? input.value : Number(input.value)]));
  const client = () => createVerificationClient({ baseUrl: location.origin, token: token() ?? '' });
  const show = (text: string, tone: 'ok' | 'bad' | 'info', note: string) => answer.replaceChildren(badge(text, tone), h('p', { class: 'muted' }, note));
  const run = async (mode: 'plain' | 'encrypted') => {
    answer.replaceChildren(t('working'));
    try {
      const purpose = '控制台试用';
      if (product.kind === 'scoring') {
        const result = mode === 'encrypted' ? await inWorker('score', product.id, features(), purpose) : await client().score(product.id, features(), purpose);
        // What the score is: the model's prediction of its target, or the probability that it is 1.
        const meaning = (product.model.type === 'logistic' ? t('scoreProbability') : t('scorePrediction')).replace('{target}', product.model.target);
        show(formatFigure(result.score), 'info', `${meaning} · ${t('signature')} · audit #${result.auditLeafIndex} · ${t('feeOfCall')} ${result.feeFen}`);
        return;
      }
      const result = mode === 'encrypted' ? await inWorker('verify', product.id, texts(), purpose) : await client().verify(product.id, texts(), purpose);
      show(result.match ? t('match') : t('noMatch'), result.match ? 'ok' : 'bad', `${t('signature')} · audit #${result.auditLeafIndex} · ${t('feeOfCall')} ${result.feeFen}`);
    } catch (error) {
      if (!(error instanceof ApiError) && !(error as { code?: string }).code) throw error;
      // What went wrong in the reader's language, then the code, the server's message and the fields it names.
      const { code, details = [] } = error as { code: string; details?: Array<{ path?: string; problem: string }> };
      show(errorMeaning(code) ?? code, 'bad', [`${code}: ${(error as Error).message}`, ...details.map(detailText)].join('; '));
    }
  };
  return h(
    'section',
    { class: 'card product', 'data-product': product.id },
    h('h3', {}, inLanguage(product.titleZh, product.title)),
    h('p', { class: 'muted' }, currentLanguage() === 'zh' ? product.title : product.titleZh),
    h('p', {}, `${t('price')}: ${product.price.industryFen} ${t('perCall')} · ${t('free')}`),
    h('details', {}, h('summary', {}, t('terms')), h('p', {}, product.terms)),
    h('h4', {}, t('tryIt')),
    form,
    h(
      'div',
      { class: 'actions' },
      h('button', { class: 'plain', onclick: () => void run('plain') }, t(product.kind === 'scoring' ? 'plainScore' : 'plain')),
      product.modes.includes('encrypted') ? h('button', { class: 'encrypted secondary', onclick: () => void run('encrypted') }, t(product.kind === 'scoring' ? 'encryptedScore' : 'encrypted')) : null,
    ),
    answer,
  );
}

/** Calls and fees; a consumer also sees where it stands against its quotas, as counted across every API process. */
export async function usagePage(principal: { id: string; role: string }): Promise<HTMLElement> {
  const [usage, standing] = await Promise.all([api('GET', '/v1/usage'), principal.role === 'consumer' ? api<QuotaStanding>('GET', `/v1/consumers/${encodeURIComponent(principal.id)}/quota`) : undefined]);
  return h(
    'div',
    {},
    standing ? h('div', { class: 'panel', id: 'quota-standing' }, h('h2', {}, t('quotaStanding')), quotaStandingTable(standing)) : null,
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, t('usage')),
      usage.usage.length ? table([t('products'), t('callMode'), t('callUse'), t('calls'), t('fees')], usage.usage.map((row: any) => [row.product, tValue('callMode', row.mode), tValue('callUse', row.use), row.calls, row.feesFen])) : h('p', { class: 'muted' }, t('nothing')),
      h('p', {}, `${t('calls')}: ${usage.totals.calls} · ${t('fees')}: ${usage.totals.feesFen}`),
    ),
  );
}

/** Calls today against the daily limit, fees this month against the cap, and a pause after probing. */
export function quotaStandingTable(standing: QuotaStanding): HTMLElement {
  return table(
    [`${t('callsToday')} / ${t('dailyLimit')}`, `${t('feesThisMonth')} / ${t('monthlyCap')}`, t('status')],
    [[`${standing.callsToday} / ${standing.dailyCalls} (${standing.day})`, `${standing.feesThisMonthFen} / ${standing.monthlyCapFen} (${standing.month})`, throttleBadge(standing)]],
  );
}

export const throttleBadge = (standing: QuotaStanding) =>
  standing.throttledUntil ? badge(`${t('throttledUntil')} ${formatTime(standing.throttledUntil)}`, 'bad') : badge(t('notThrottled'), 'ok');
