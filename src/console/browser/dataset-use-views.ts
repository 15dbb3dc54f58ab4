import { api, errorText } from './api.js';
import { formatTime, h, saveCsv, statusBadge, table } from './dom.js';
import { inLanguage, jobCodeMeaning, t, tValue } from './i18n.js';

/**
 * A dataset's use trail (art. 12: 数据使用可追溯) for its source, the data centre and regulators: who ran jobs over
 * it and for what stated purpose, which products answer from it and how often, who pulled or exported copies, what
 * was derived from it — each line with its audit leaves. The server decides who sees which dataset's trail; the
 * select lists a public body's own datasets only so as not to offer what it would be refused.
 */
type Me = { role: string; institutionId: string | null };
type Entry = { id: string; title: string; titleZh: string; institution: { id: string } };

const periods = [30, 90, 365];

export async function datasetUsesPage(me: Me): Promise<HTMLElement> {
  const { datasets } = await api<{ datasets: Entry[] }>('GET', '/v1/datasets');
  const shown = me.role === 'institution' ? datasets.filter((entry) => entry.institution.id === me.institutionId) : datasets;
  const dataset = h('select', { id: 'uses-dataset', onchange: () => void reload() }, ...shown.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`)));
  const period = h('select', { id: 'uses-period', onchange: () => void reload() }, ...periods.map((days) => h('option', { value: String(days) }, t('lastDays').replace('{n}', String(days)))));
  const trail = h('div', { id: 'uses-trail' });

  /** The chosen dataset's trail URL for the chosen period, ending now. */
  const trailUrl = (format: 'json' | 'csv') => {
    const to = new Date();
    const from = new Date(to.getTime() - Number(period.value) * 86_400_000);
    return `/v1/datasets/${encodeURIComponent(dataset.value)}/uses?${new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), format })}`;
  };
  async function load() {
    if (!dataset.value) return void trail.replaceChildren(h('p', { class: 'muted' }, t('nothing')));
    trail.replaceChildren(...trailOf(await api<any>('GET', trailUrl('json'))));
  }
  const download = async () => saveCsv(await api<string>('GET', trailUrl('csv')), `${dataset.value}-uses.csv`);
  /** A later choice's failure shows in place of the trail (the page itself was drawn). */
  const reload = () => load().catch((error: unknown) => trail.replaceChildren(h('p', { class: 'error' }, errorText(error))));
  await load();
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('uses')),
    h('p', { class: 'muted' }, t('usesExplained')),
    h('div', { class: 'form' }, h('label', { for: 'uses-dataset' }, t('dataset')), dataset, h('label', { for: 'uses-period' }, t('usesPeriod')), period),
    trail,
    h('p', {}, h('a', { href: '#', id: 'uses-csv', onclick: (event: Event) => (event.preventDefault(), void download().catch((error: unknown) => trail.prepend(h('p', { class: 'error' }, errorText(error))))) }, t('downloadCsv'))),
  );
}

/** A job's state, and why (a refusal's or a run's code in the page's language, the code itself as its title). */
function jobState(job: { status: string; code: string | null }): HTMLElement {
  const state = h('span', {}, statusBadge(job.status));
  if (!job.code || job.code === 'CHECKED') return state;
  state.append(' ', h('span', { class: 'muted', title: job.code }, jobCodeMeaning({ status: job.status, code: job.code })));
  return state;
}

const leaves = (indexes: Array<number | null>) => h('code', { class: 'leaves' }, indexes.filter((index) => index !== null).map((index) => `#${index}`).join(' ') || '—');

/** A product's calls have a leaf each: the first and the last of the period are shown, the rest lie between. */
const callLeaves = (first: number | null, last: number | null) =>
  first === null ? leaves([]) : first === last ? leaves([first]) : h('code', { class: 'leaves', title: t('usesCallLeaves') }, `#${first} … #${last}`);

/** A section per kind of use; an empty one says so rather than vanishing, so "none" is an answer, not a gap. */
function section(title: string, id: string, headers: string[], rows: Array<Array<Node | string | number>>, note?: string): HTMLElement {
  return h('section', { class: 'card', id }, h('h3', {}, title), rows.length ? table(headers, rows) : h('p', { class: 'muted' }, t('noUses')), note ? h('p', { class: 'muted' }, note) : null);
}

function trailOf(uses: any): Node[] {
  const totals = uses.totals;
  const summary = t('usesSummary')
    .replace('{jobs}', totals.jobs)
    .replace('{released}', totals.jobsReleased)
    .replace('{calls}', Number(totals.productCalls).toLocaleString())
    .replace('{pulls}', totals.channelPulls)
    .replace('{pulledRows}', Number(totals.rowsPulled).toLocaleString())
    .replace('{exports}', totals.externalDeliveries)
    .replace('{exportedRows}', Number(totals.rowsDelivered).toLocaleString())
    .replace('{derived}', totals.derivedDatasets)
    .replace('{incidents}', totals.incidents);
  return [
    h('p', { id: 'uses-summary' }, summary),
    section(
      t('usesJobs'),
      'uses-jobs',
      [t('created'), t('operator'), t('purpose'), t('kind'), t('status'), t('auditLeaves')],
      uses.jobs.map((job: any) => [formatTime(job.submittedAt), inLanguage(job.operatorNameZh, job.operatorName), job.purpose, job.kind ? tValue('jobKind', job.kind) : '—', jobState(job), leaves(job.auditIndexes)]),
      uses.jobsTruncated ? t('usesJobsTruncated') : undefined,
    ),
    section(
      t('usesProducts'),
      'uses-products',
      [t('products'), t('kind'), t('status'), t('calls'), tValue('callUse', 'public_interest'), tValue('callUse', 'industry'), t('usesLastCall'), t('auditLeaves')],
      uses.products.map((product: any) => [
        inLanguage(product.titleZh, product.title),
        tValue('productKind', product.kind),
        statusBadge(product.status),
        product.calls.toLocaleString(),
        product.publicInterestCalls.toLocaleString(),
        product.industryCalls.toLocaleString(),
        formatTime(product.lastCall),
        callLeaves(product.firstAuditIndex, product.lastAuditIndex),
      ]),
    ),
    section(
      t('usesPulls'),
      'uses-pulls',
      [t('time'), t('recipient'), t('version'), t('columns'), t('rows'), t('auditLeaves')],
      uses.channelPulls.map((pull: any) => [formatTime(pull.at), inLanguage(pull.recipientNameZh, pull.recipientName) || pull.recipient, `v${pull.version}`, pull.columns.join(', '), pull.rows.toLocaleString(), leaves([pull.auditIndex])]),
    ),
    section(
      t('usesExports'),
      'uses-exports',
      [t('time'), t('recipient'), t('version'), t('columns'), t('rows'), t('auditLeaves')],
      uses.externalDeliveries.map((delivery: any) => [formatTime(delivery.at), delivery.recipient, `v${delivery.version}`, delivery.columns.join(', '), delivery.rows.toLocaleString(), leaves([delivery.auditIndex])]),
    ),
    section(
      t('usesIncidents'),
      'uses-incidents',
      [t('time'), t('kind'), t('operator'), t('incidentFinding'), t('auditLeaves')],
      uses.incidents.map((incident: any) => [
        formatTime(incident.at),
        tValue('incident', incident.kind),
        incident.operator ?? '—',
        incident.outcome ? tValue('incidentOutcome', incident.outcome) : t('incidentOpen'),
        leaves([incident.auditIndex]),
      ]),
    ),
    section(
      t('usesDerived'),
      'uses-derived',
      [t('time'), t('dataset'), t('auditLeaves')],
      uses.derivedDatasets.map((derived: any) => [formatTime(derived.at), derived.dataset, leaves([derived.auditIndex])]),
    ),
  ];
}
