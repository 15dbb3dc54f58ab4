import { toCsv } from '../../http/csv-text.js';
import { chinaDay } from '../../time/china-time.js';
import { api, errorText } from './api.js';
import { formatTime, h, saveCsv, table } from './dom.js';
import { inLanguage, t, tValue } from './i18n.js';

/**
 * The data centre answers a person's request to know who checked them (PIPL arts. 44–45): it picks the product whose
 * inputs name the person, types the identifier from the request it holds on file (the person's identity checked at
 * the counter, not here) and the request's reference, and reads every check of that person by any consumer. The
 * identifier is sent in a POST body and is not kept in the page once answered.
 */
type Product = { id: string; kind: string; title: string; titleZh: string; subjectInputs: string[]; inputSchema: { properties: Record<string, { description?: string; 'x-description-zh'?: string }> } };

/** The checks as a CSV for the reply; times as the API gives them (ISO 8601, UTC), which spreadsheets read as times. */
function subjectChecksCsv(checks: any[]): string {
  return toCsv(
    ['calledAt', 'product', 'productTitleZh', 'consumer', 'consumerName', 'use', 'purpose', 'mode', 'auditIndex'],
    checks.map((check) => [check.calledAt, check.product, check.productTitleZh, check.consumer, check.consumerName, check.use, check.purpose, check.mode, check.auditIndex]),
  );
}

export async function subjectAccessPage(): Promise<HTMLElement> {
  const { products } = await api<{ products: Product[] }>('GET', '/v1/products');
  const verification = products.filter((product) => product.kind === 'verification');
  const product = h('select', { id: 'subject-product' }, ...verification.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`))) as HTMLSelectElement;
  const inputs = h('div', { id: 'subject-inputs' });
  const reference = h('input', { id: 'subject-reference', placeholder: 'SAR-2026-0001' }) as HTMLInputElement;
  const answer = h('div', { id: 'subject-answer' });
  const fields = new Map<string, HTMLInputElement>();
  const showInputs = () => {
    fields.clear();
    const chosen = verification.find((entry) => entry.id === product.value);
    inputs.replaceChildren(
      ...(chosen?.subjectInputs ?? []).map((name) => {
        const field = h('input', { name, autocomplete: 'off' }) as HTMLInputElement;
        fields.set(name, field);
        const described = chosen!.inputSchema.properties[name];
        return h('div', {}, h('label', {}, `${inLanguage(described?.['x-description-zh'], described?.description) || name} (${name})`), field);
      }),
    );
  };
  product.addEventListener('change', showInputs);
  showInputs();
  const ask = async () => {
    answer.replaceChildren(t('working'));
    try {
      const input = Object.fromEntries([...fields].map(([name, field]) => [name, field.value.trim()]));
      const result = await api<{ reference: string; total: number; auditIndex: number; checks: any[] }>('POST', '/v1/subject-access', { product: product.value, input, reference: reference.value });
      // The identifier has done its work: it is not left in the page.
      for (const field of fields.values()) field.value = '';
      answer.replaceChildren(
        h('p', {}, t('subjectChecksFound').replace('{n}', String(result.total)).replace('{reference}', result.reference), h('small', { class: 'muted' }, ` · audit #${result.auditIndex}`)),
        result.checks.length
          ? table(
              [t('time'), t('products'), t('consumers'), t('callUse'), t('purpose'), '#'],
              result.checks.map((check) => [formatTime(check.calledAt), inLanguage(check.productTitleZh, check.productTitle), h('span', {}, check.consumerName, h('br'), h('small', { class: 'muted' }, check.consumer)), tValue('callUse', check.use), check.purpose, h('code', {}, `#${check.auditIndex}`)]),
              { id: 'subject-checks' },
            )
          : h('p', { class: 'muted' }, t('nothing')),
        result.total > result.checks.length ? h('p', { class: 'muted' }, t('subjectChecksMore').replace('{n}', String(result.total - result.checks.length))) : '',
        // For the written reply: the same list as a file, built here from this answer (a second lookup would be a
        // second disclosure on the record). Purposes are consumers' text: toCsv defuses any that reads as a formula.
        h('p', {}, h('a', { href: '#', id: 'subject-csv', onclick: (event: Event) => (event.preventDefault(), saveCsv(subjectChecksCsv(result.checks), `subject-access-${result.reference}-${chinaDay(new Date())}.csv`)) }, t('downloadCsv'))),
      );
    } catch (error) {
      answer.replaceChildren(h('p', { class: 'error' }, errorText(error)));
    }
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('subjectAccess')),
    h('p', { class: 'muted' }, t('subjectAccessIntro')),
    h('div', { class: 'form' }, h('label', { for: 'subject-product' }, t('subjectProduct')), product, inputs, h('label', { for: 'subject-reference' }, t('subjectReference')), reference),
    h('div', { class: 'actions' }, h('button', { id: 'subject-ask', onclick: () => void ask() }, t('subjectAsk'))),
    answer,
  );
}
