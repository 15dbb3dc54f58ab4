import { errorMeaning } from './error-meanings.js';
import { api, ApiError, errorText } from './api.js';
import { readBounds, writeBounds } from '../../privacy/bounds-text.js';
import { readCategories, writeCategories } from '../../models/categories-text.js';
import { labelled } from './form-controls.js';
import { formatFigure, formatNoisyFigure } from './figures.js';
import { badge, formatTime, h, saveCsv, statusBadge, statusTone, table } from './dom.js';
import { currentLanguage, inLanguage, jobCodeMeaning, jobKindName, t, tValue } from './i18n.js';
import { isSameShapeHold } from '../../jobs/job-stage.js';
import { licensedColumns, offeredExamples } from './example-queries.js';

/** Operator pages: the catalogue, the SQL editor with a live policy check, jobs and their released results. */
type Dataset = {
  id: string;
  title: string;
  titleZh: string;
  description: string;
  descriptionZh?: string | null;
  grade: string;
  institution: { id?: string; name: string; nameZh?: string } | string;
  openData: boolean;
  privacyUnit: string;
  updateFrequency: string;
  columns: Array<{ name: string; type: string; class: string; description: string; descriptionZh?: string }>;
  latestVersion: string | null;
  updateOverdue?: boolean;
  versions?: Array<{ versionNumber: number; rowCount: number; quality: { score: number | null; passed: boolean } | null }>;
};

/** A description in the page's language: the Chinese one where the source wrote it, else the one it registered. */
const describedIn = (entry: { description: string; descriptionZh?: string | null }) => inLanguage(entry.descriptionZh, entry.description);

/**
 * The catalogue: every entry, and one opened beside them — the one the address names (`#catalogue/<id>`), else a
 * public body's own first entry (what it looks at), else the first. Clicking another puts it in the address without
 * reloading the page, so a reload or a shared link opens the same entry.
 */
export async function cataloguePage(viewer: { role: string; institutionId: string | null }, requested?: string): Promise<HTMLElement> {
  const { datasets } = await api<{ datasets: Dataset[] }>('GET', '/v1/datasets');
  const ownedBy = (dataset: Dataset) => viewer.role === 'institution' && typeof dataset.institution !== 'string' && dataset.institution.id === viewer.institutionId;
  const detail = h('div', { class: 'panel', id: 'dataset-detail' }, h('p', { class: 'muted' }, '←'));
  const rows = new Map<string, HTMLElement>();
  const show = (dataset: Dataset) => {
    for (const [id, row] of rows) row.classList.toggle('chosen', id === dataset.id);
    const latest = dataset.versions?.at(-1);
    const quality = latest?.quality;
    const source = typeof dataset.institution === 'string' ? dataset.institution : currentLanguage() === 'zh' ? (dataset.institution.nameZh ?? dataset.institution.name) : dataset.institution.name;
    // Art. 10: the entry's revisions, each with its readable diff, loaded when the entry is opened.
    const history = h('details', { id: 'catalogue-history' }, h('summary', {}, t('history')));
    void api<{ revisions: any[] }>('GET', `/v1/datasets/${encodeURIComponent(dataset.id)}/revisions`).then(({ revisions }) =>
      history.append(
        table(
          ['#', t('status'), t('changes'), t('created')],
          revisions.map((revision) => [revision.revision, statusBadge(revision.status), h('code', { class: 'wrap' }, revision.diff.map((entry: { field: string }) => entry.field).join(', ')), formatTime(revision.createdAt)]),
        ),
      ),
    );
    detail.replaceChildren(
      h('h3', {}, `${dataset.titleZh} · ${dataset.title}`),
      h(
        'p',
        {},
        badge(dataset.grade, dataset.grade === 'L1' ? 'ok' : dataset.grade === 'L4' ? 'bad' : 'warn'),
        ' ',
        h('code', {}, dataset.id),
        ' ',
        dataset.openData ? badge(t('openData'), 'ok') : null,
        ' ',
        dataset.updateOverdue ? badge(t('updateOverdue'), 'bad') : null,
        ' ',
        quality ? badge(`${t('qualityScore')} ${quality.score ?? '—'}`, quality.passed ? 'ok' : 'bad') : null,
      ),
      h('p', { class: 'muted' }, describedIn(dataset)),
      h(
        'p',
        { id: 'dataset-facts' },
        `${t('institution')}: ${source} · ${t('privacyUnit')}: `,
        h('code', {}, dataset.privacyUnit),
        ` · ${t('updates')}: ${tValue('frequency', dataset.updateFrequency)}`,
        latest ? ` · ${t('rows')}: ${latest.rowCount.toLocaleString()} (v${latest.versionNumber})` : '',
      ),
      table(
        [t('columns'), t('columnType'), t('columnClass'), t('description')],
        dataset.columns.map((column) => [
          h('code', {}, column.name),
          column.type,
          badge(tValue('class', column.class), column.class === 'direct_identifier' ? 'bad' : column.class === 'sensitive' ? 'warn' : 'info'),
          describedIn(column),
        ]),
      ),
      history,
    );
  };
  const list = table(
    [t('datasets'), t('grade'), t('loaded')],
    datasets.map((dataset) => [
      h(
        'a',
        {
          href: `#catalogue/${encodeURIComponent(dataset.id)}`,
          'data-dataset': dataset.id,
          // Only a click puts the entry in the address: the page opened first leaves it alone, as by the time its
          // data arrives the reader may already be on another page.
          onclick: (event: Event) => (event.preventDefault(), window.history.replaceState(null, '', `#catalogue/${encodeURIComponent(dataset.id)}`), show(dataset)),
        },
        inLanguage(dataset.titleZh, dataset.title),
        h('br'),
        h('small', { class: 'muted' }, dataset.id),
        ownedBy(dataset) ? ' ' : null,
        ownedBy(dataset) ? badge(t('ownDataset'), 'info') : null,
      ),
      badge(dataset.grade, statusTone('x')),
      dataset.latestVersion ? '✓' : '—',
    ]),
  );
  for (const link of list.querySelectorAll<HTMLElement>('a[data-dataset]')) rows.set(link.dataset.dataset!, link.closest('tr')!);
  const opened = datasets.find((dataset) => dataset.id === requested) ?? datasets.find(ownedBy) ?? datasets[0];
  if (opened) show(opened);
  return h('div', { class: 'columns' }, h('div', { class: 'panel' }, h('h2', {}, t('catalogue')), list), detail);
}

/**
 * What the SQL may name in one chosen dataset: its columns within the licence, each with its type, its class (which
 * decides what the policy lets a query do with it) and what it holds. Columns outside the licence are counted, not
 * listed: naming one is an over-scope incident.
 */
function columnReference(dataset: Dataset, licensed: Set<string> | 'all'): HTMLElement {
  const columns = dataset.columns.filter((column) => licensed === 'all' || licensed.has(column.name));
  const outside = dataset.columns.length - columns.length;
  return h(
    'details',
    { class: 'column-reference', 'data-dataset': dataset.id },
    h('summary', {}, `${t('columns')} · ${inLanguage(dataset.titleZh, dataset.title)} (${dataset.id})`, ' ', badge(dataset.grade, 'info')),
    table(
      [t('columns'), t('columnType'), t('columnClass'), t('description')],
      columns.map((column) => [h('code', {}, column.name), column.type, badge(tValue('class', column.class), column.class === 'direct_identifier' ? 'bad' : column.class === 'sensitive' ? 'warn' : 'info'), describedIn(column)]),
    ),
    outside > 0 ? h('p', { class: 'muted outside-licence' }, t('columnsOutsideLicence').replace('{n}', String(outside))) : null,
  );
}

export async function analysisPage(): Promise<HTMLElement> {
  const [{ datasets: catalogue }, { licences }] = await Promise.all([
    api<{ datasets: Dataset[] }>('GET', '/v1/datasets'),
    api<{ licences: Array<{ status: string; scope: Array<{ dataset: string; columns?: string[] }> }> }>('GET', '/v1/licences'),
  ]);
  // Only the datasets of a licence in force are offered (the catalogue page lists them all): a query beyond the
  // licence is an over-scope incident. For the same reason nothing is checked until the operator acts — an
  // example query checked on opening raised an incident for an operator whose licence left out one of its columns.
  const licensed = new Set(licences.filter((licence) => licence.status === 'active').flatMap((licence) => licence.scope.map((entry) => entry.dataset)));
  const datasets = catalogue.filter((dataset) => licensed.has(dataset.id));
  const first = licensed.has('power_readings') ? 'power_readings' : datasets[0]?.id;
  const chosen = new Set<string>(first ? [first] : []);
  const reference = h('div', { id: 'column-reference' });
  const showReference = () => reference.replaceChildren(...datasets.filter((dataset) => chosen.has(dataset.id)).map((dataset) => columnReference(dataset, licensedColumns(licences, dataset.id))));
  const boxes = datasets.map((dataset) =>
    h(
      'label',
      { class: 'check' },
      h('input', {
        type: 'checkbox',
        value: dataset.id,
        checked: chosen.has(dataset.id),
        onchange: (event: Event) => ((event.target as HTMLInputElement).checked ? chosen.add(dataset.id) : chosen.delete(dataset.id), showReference()),
      }),
      ` ${dataset.id}`,
    ),
  );
  showReference();
  // The example names only columns the licence covers: sent as it is, it must not be an over-scope incident.
  const power = licensedColumns(licences, 'power_readings');
  const kwh = power === 'all' || power.has('kwh') ? ', sum(kwh) AS kwh' : '';
  const example = first === 'power_readings' ? `SELECT town, count(DISTINCT account_id) AS accounts${kwh}\nFROM power_readings\nWHERE customer_type = 'household'\nGROUP BY town` : first ? `SELECT count(*) AS row_count\nFROM ${first}` : '';
  const sql = h('textarea', { id: 'sql', rows: 8, spellcheck: false }, example);
  const purpose = h('input', { id: 'purpose', value: '新片区能源规划（公益）' });
  const verdict = h('div', { id: 'verdict', class: 'verdict' });
  const trialOutput = h('div', { id: 'trial' });
  // What kind of job: an aggregate, a differentially private aggregate (what L4 and important data require), or a
  // model trained on the rows the SQL selects. Each kind shows only its own fields.
  const kind = h('select', { id: 'job-kind' }, ...(['aggregate', 'dp_aggregate', 'model', 'dp_model'] as const).map((value) => h('option', { value }, tValue('jobKind', value))));
  const epsilon = h('input', { id: 'dp-epsilon', type: 'number', min: '0.01', step: '0.1', value: '0.5' });
  const delta = h('input', { id: 'dp-delta', type: 'number', min: '0', step: '1e-7', placeholder: '0' });
  const mechanism = h('select', { id: 'dp-mechanism' }, h('option', { value: 'laplace' }, 'Laplace'), h('option', { value: 'gaussian' }, 'Gaussian'));
  // Clamp bounds: narrower ones for a registered column, and the only ones a column computed in a CTE or an output
  // summing an expression has.
  const bounds = h('input', { id: 'dp-bounds', placeholder: 'trips: 0..20; fare: 0..5', spellcheck: false });
  const modelType = h('select', { id: 'model-type' }, h('option', { value: 'linear' }, t('linearRegression')), h('option', { value: 'logistic' }, t('logisticRegression')));
  const target = h('input', { id: 'model-target', placeholder: 'log_bill' });
  const features = h('input', { id: 'model-features', placeholder: 'log_kwh, enterprise' });
  // A text feature's values, the first the baseline: `customer_type: household, enterprise; town: 泥城镇, 书院镇`.
  const categories = h('input', { id: 'model-categories', placeholder: 'customer_type: household, enterprise', spellcheck: false });
  const dpFields = h('div', { id: 'dp-fields', class: 'grid' }, labelled('ε', epsilon), labelled(`δ (${t('optional')})`, delta), labelled(t('mechanism'), mechanism), labelled(t('clampBounds'), bounds));
  const modelFields = h('div', { id: 'model-fields', class: 'grid' }, labelled(t('modelType'), modelType), labelled(t('modelTarget'), target), labelled(t('modelFeatures'), features), labelled(t('modelCategories'), categories));
  const showKind = () => {
    dpFields.hidden = kind.value !== 'dp_aggregate' && kind.value !== 'dp_model';
    modelFields.hidden = kind.value !== 'model' && kind.value !== 'dp_model';
  };
  showKind();
  // A job's query carried from its page (jobPage, "edit as a new job"): filled in once, then forgotten, and — as
  // with an example — nothing is checked until the operator acts. Datasets the licence no longer covers are left out.
  const draftText = sessionStorage.getItem(draftKey);
  sessionStorage.removeItem(draftKey);
  const draft = draftText ? (JSON.parse(draftText) as AnalysisDraft) : null;
  const draftNote = h('p', { class: 'muted', id: 'draft-note' });
  draftNote.hidden = !draft;
  if (draft) {
    chosen.clear();
    for (const dataset of draft.datasets) if (licensed.has(dataset)) chosen.add(dataset);
    for (const box of boxes) (box.firstChild as HTMLInputElement).checked = chosen.has((box.firstChild as HTMLInputElement).value);
    showReference();
    sql.value = draft.sql;
    purpose.value = draft.purpose;
    kind.value = draft.kind;
    if (draft.privacy) {
      epsilon.value = String(draft.privacy.epsilon);
      delta.value = draft.privacy.delta ? String(draft.privacy.delta) : '';
      mechanism.value = draft.privacy.mechanism;
      bounds.value = writeBounds(draft.privacy.bounds ?? {});
    }
    if (draft.model) {
      modelType.value = draft.model.type;
      target.value = draft.model.target;
      features.value = draft.model.features.join(', ');
      categories.value = writeCategories(draft.model.categories ?? {});
    }
    showKind();
    draftNote.textContent = t('draftFromJob').replace('{job}', draft.from.slice(0, 20));
  }
  // Worked examples the licence covers: choosing one fills the form; nothing is checked until the operator acts.
  const examples = offeredExamples((dataset) => licensedColumns(licences, dataset));
  const exampleChoice = h(
    'select',
    { id: 'example' },
    h('option', { value: '' }, t('exampleQueries')),
    ...examples.map((example) => h('option', { value: example.id }, inLanguage(example.zh, example.en))),
  );
  exampleChoice.addEventListener('change', () => {
    const example = examples.find((candidate) => candidate.id === exampleChoice.value);
    if (!example) return;
    chosen.clear();
    for (const dataset of Object.keys(example.reads)) chosen.add(dataset);
    for (const box of boxes) (box.firstChild as HTMLInputElement).checked = chosen.has((box.firstChild as HTMLInputElement).value);
    showReference();
    sql.value = example.sql;
    kind.value = example.kind;
    epsilon.value = String(example.privacy?.epsilon ?? 0.5);
    bounds.value = example.privacy?.bounds ?? '';
    showKind();
  });
  const clampBounds = () => {
    const reading = readBounds(bounds.value);
    // Refused here, in the server's own terms, rather than sent without the part the operator meant.
    if ('problem' in reading) throw new ApiError(400, 'VALIDATION_FAILED', `privacy.bounds: ${reading.problem}`);
    return Object.keys(reading.bounds).length > 0 ? { bounds: reading.bounds } : {};
  };
  // A part that does not read as feature: values is refused here, as a bound is, never dropped.
  const modelCategories = () => {
    const reading = readCategories(categories.value);
    if ('problem' in reading) throw new ApiError(400, 'VALIDATION_FAILED', `model.categories: ${reading.problem}`);
    return Object.keys(reading.categories).length > 0 ? { categories: reading.categories } : {};
  };
  const submission = () => ({
    datasets: [...chosen],
    sql: sql.value,
    purpose: purpose.value,
    ...(kind.value === 'dp_aggregate' || kind.value === 'dp_model'
      ? { privacy: { differentialPrivacy: true, epsilon: Number(epsilon.value), ...(delta.value ? { delta: Number(delta.value) } : {}), mechanism: mechanism.value, ...clampBounds() } }
      : {}),
    ...(kind.value === 'model' || kind.value === 'dp_model'
      ? { model: { type: modelType.value, target: target.value.trim(), features: features.value.split(',').map((name) => name.trim()).filter(Boolean), ...modelCategories() } }
      : {}),
  });
  const explain = (error: unknown, into: HTMLElement = verdict) => {
    if (!(error instanceof ApiError)) throw error;
    // The code's meaning in the chosen language, then the server's own reason (it names the place in the SQL).
    const meaning = errorMeaning(error.code);
    into.replaceChildren(
      h('p', {}, badge(t('refused'), 'bad'), ' ', h('code', {}, error.code), meaning ? ` ${meaning}` : ''),
      h('p', {}, error.message),
      ...error.details.map((detail) => h('p', { class: 'muted' }, detail.problem)),
    );
  };
  // Checks overlap while the operator types; only the latest one's answer is shown.
  let latestCheck = 0;
  const check = async () => {
    const mine = ++latestCheck;
    verdict.replaceChildren(t('working'));
    try {
      const body = submission();
      const decision = await api('POST', '/v1/jobs/dry-run', body);
      // A differentially private job also spends privacy budget: what it would cost and what is left.
      const estimate = body.privacy ? await api('POST', '/v1/jobs/estimate', body) : undefined;
      if (mine !== latestCheck) return;
      verdict.replaceChildren(
        h('p', {}, badge(t('accepted'), 'ok'), ` ${jobKindName(decision)} · ${t('grade')} ${decision.grade}`, decision.model ? ` · ${decision.model.type}: ${decision.model.target} ~ ${decision.model.features.join(' + ')}` : ''),
        decision.model?.categoryColumns ? h('p', { class: 'muted', id: 'category-columns' }, categoryLegend(decision.model.categoryColumns)) : '',
        // A DP output is not suppressed or rounded: the grade's thresholds do not apply to it, its noise does.
        h(
          'p',
          { class: 'muted' },
          decision.differentialPrivacy
            ? `ε ${decision.differentialPrivacy.epsilon} · δ ${decision.differentialPrivacy.delta} · ${decision.differentialPrivacy.mechanism} · ${t('reviewersNeeded')} ${decision.policy.reviewers}`
            : `${t('minContributors')} ≥ ${decision.policy.minContributors} · ${t('reviewersNeeded')} ${decision.policy.reviewers} · ${t('countsRoundedTo')} ${decision.policy.roundCountsTo ?? '—'}`,
        ),
        estimate
          ? h(
              'p',
              { id: 'budget-estimate' },
              estimate.allowed ? badge(`ε ${estimate.epsilon}`, 'ok') : badge(tValue('refusal', estimate.code ?? ''), 'bad'),
              estimate.budget ? ` ${t('budgetRemaining')} ${estimate.budget.epsilonRemaining} / ${estimate.budget.epsilonCap}` : '',
              estimate.reason ? ` · ${estimate.reason}` : '',
            )
          : '',
        expectedNoiseTable(decision.expectedNoise),
      );
    } catch (error) {
      if (mine === latestCheck) explain(error);
    }
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const checkSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void check(), 600); // a live check while typing
  };
  for (const control of [sql, epsilon, delta, bounds, target, features]) control.addEventListener('input', checkSoon);
  // A trial's rows belong to the SQL they ran: an edit clears them rather than leave another query's output shown.
  sql.addEventListener('input', () => trialOutput.replaceChildren());
  for (const control of [mechanism, modelType]) control.addEventListener('change', checkSoon);
  kind.addEventListener('change', () => (showKind(), void check()));
  // One key per press of the button, kept while that request is out: a second press (or a double click) before
  // the answer comes sends the same key, so the server answers with one job instead of queueing two.
  let pending: { body: string; key: string } | undefined;
  const submit = async () => {
    let body: ReturnType<typeof submission>;
    try {
      body = submission();
    } catch (error) {
      return explain(error);
    }
    const text = JSON.stringify(body);
    if (pending?.body !== text) pending = { body: text, key: crypto.randomUUID() };
    const { key } = pending;
    try {
      const job = await api('POST', '/v1/jobs', body, { 'idempotency-key': key });
      location.hash = `#jobs/${job.id}`;
    } catch (error) {
      explain(error);
    } finally {
      if (pending?.key === key) pending = undefined;
    }
  };
  // The job's SQL over synthetic rows made from the catalogue (never the real data): its columns, joins and
  // grouping can be checked before a review or budget is spent. Labelled as synthetic wherever it is shown.
  const trialRun = async () => {
    trialOutput.replaceChildren(t('working'));
    try {
      const trial = await api('POST', '/v1/jobs/trial-run', submission());
      trialOutput.replaceChildren(
        h('p', { class: 'synthetic-note' }, badge(t('trialRun'), 'warn'), ' ', t('trialNote')),
        table(
          trial.columns.map((column: { name: string; type: string }) => h('span', { title: column.type }, column.name)),
          // Numbers as released figures are shown (float sums' last digits are rounding error); the rest as they are.
          trial.rows.map((row: unknown[]) => row.map((value) => (value === null ? h('span', { class: 'null' }, 'NULL') : typeof value === 'number' ? formatFigure(value) : String(value)))),
          { id: 'trial-table' },
        ),
        h('p', { class: 'muted' }, `${t('trialRows')} ${trial.rowCount} · ${t('showingRows')} ${trial.rows.length} · ${t('trialRowsPerDataset')} ${trial.rowsPerDataset} · ${trial.milliseconds} ms`),
      );
    } catch (error) {
      explain(error, trialOutput);
    }
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('analysis')),
    draftNote,
    examples.length > 0 ? exampleChoice : '',
    h('div', { class: 'checks' }, ...boxes),
    reference,
    h('label', {}, t('jobKindLabel')),
    kind,
    dpFields,
    modelFields,
    h('label', {}, t('sql')),
    sql,
    h('label', {}, t('purpose')),
    purpose,
    h(
      'div',
      { class: 'actions' },
      h('button', { id: 'check', class: 'secondary', onclick: () => void check() }, t('check')),
      h('button', { id: 'trial-run', class: 'secondary', onclick: () => void trialRun() }, t('trialRun')),
      h('button', { id: 'submit', onclick: () => void submit() }, t('submit')),
    ),
    verdict,
    trialOutput,
  );
}

const jobStatuses = ['queued', 'running', 'checked', 'in_review', 'released', 'withheld', 'rejected', 'failed', 'cancelled'] as const;
const jobsPageSize = 50;
/** The status the job list is narrowed to: kept while the list refreshes itself. */
let jobsStatus = '';

/** Renders the page again; `'poll'` when only to follow a running job, which leaves the menu's counts as they are. */
type Rerender = (poll?: 'poll') => void;

/**
 * The job list, newest first, narrowed to one status if asked, fifty at a time with older ones on request. It
 * refreshes itself while any job shown is still moving (queued, running, checked).
 */
export async function jobsPage(rerender: Rerender): Promise<HTMLElement> {
  // One more than a page is asked for, to know whether there are older jobs.
  const page = async (offset: number) => (await api<{ jobs: any[] }>('GET', `/v1/jobs?limit=${jobsPageSize + 1}&offset=${offset}${jobsStatus ? `&status=${jobsStatus}` : ''}`)).jobs;
  const first = await page(0);
  let jobs = first.slice(0, jobsPageSize);
  let more = first.length > jobsPageSize;
  if (jobs.some((job) => ['queued', 'running', 'checked'].includes(job.status))) setTimeout(() => location.hash.replace(/^#/, '') === 'jobs' && rerender('poll'), 1500);
  const status = h('select', { id: 'jobs-status' }, h('option', { value: '' }, t('allStatuses')), ...jobStatuses.map((name) => h('option', { value: name, ...(name === jobsStatus ? { selected: true } : {}) }, tValue('status', name))));
  status.addEventListener('change', () => {
    jobsStatus = status.value;
    rerender();
  });
  const list = h('div', {});
  const older = h('button', { id: 'jobs-older', class: 'secondary' }, t('olderJobs'));
  const render = () => {
    const rows = jobs.map((job) => [h('a', { href: `#jobs/${job.id}` }, job.id.slice(0, 16)), statusBadge(job.status), jobKindName(job), job.grade ?? '—', job.purpose, formatTime(job.createdAt)]);
    list.replaceChildren(rows.length ? table(['id', t('status'), t('kind'), t('grade'), t('purpose'), t('created')], rows, { id: 'jobs-table' }) : h('p', { class: 'muted' }, t('nothing')));
    older.hidden = !more;
  };
  older.addEventListener('click', async () => {
    older.disabled = true;
    try {
      const next = await page(jobs.length);
      // Jobs submitted meanwhile shift the pages: a job already listed is not listed twice.
      const listed = new Set(jobs.map((job) => job.id));
      jobs = jobs.concat(next.slice(0, jobsPageSize).filter((job) => !listed.has(job.id)));
      more = next.length > jobsPageSize;
      render();
    } finally {
      older.disabled = false;
    }
  });
  render();
  return h('div', { class: 'panel' }, h('h2', {}, t('jobs')), labelled(t('status'), status), list, h('div', { class: 'actions' }, older));
}

/** A job's query and settings carried to the analysis page, to change and send as a new job (sessionStorage, this tab only). */
type AnalysisDraft = {
  from: string;
  datasets: string[];
  sql: string;
  purpose: string;
  kind: string;
  privacy: { epsilon: number; delta: number; mechanism: string; bounds?: Record<string, { min: number; max: number }> } | null;
  model: { type: string; target: string; features: string[]; categories?: Record<string, string[]> } | null;
};
const draftKey = 'pds-analysis-draft';

/** One job: live status until it settles, then its released output with suppressed cells explained. */
export async function jobPage(id: string, rerender: Rerender, editable = false): Promise<HTMLElement> {
  const job = await api('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  // An operator iterates on its queries: its own job's SQL, datasets, purpose and kind open in the editor as a new job.
  const editAsNew = () => {
    const dp = job.differentialPrivacy as AnalysisDraft['privacy'];
    const kind = job.kind === 'model' ? (dp ? 'dp_model' : 'model') : dp ? 'dp_aggregate' : 'aggregate';
    const draft: AnalysisDraft = { from: job.id, datasets: job.datasets, sql: job.sql, purpose: job.purpose, kind, privacy: dp, model: job.model ?? null };
    sessionStorage.setItem(draftKey, JSON.stringify(draft));
    location.hash = '#analysis';
  };
  const panel = h(
    'div',
    { class: 'panel' },
    h('h2', {}, `${t('job')} ${job.id.slice(0, 20)}`),
    h('p', { id: 'job-state' }, statusBadge(job.status), ' ', jobStage(job), job.code ? h('span', { title: job.code }, ` · ${jobCodeMeaning(job)}`) : null),
    job.reason ? h('p', { class: 'muted' }, job.reason) : null,
    table(
      [t('field'), ''],
      [
        [t('kind'), jobKindName(job)],
        [t('datasets'), h('code', {}, job.datasets.join(', '))],
        [t('grade'), job.grade ?? '—'],
        [t('purpose'), job.purpose],
        [t('created'), formatTime(job.createdAt)],
        [t('finishedAt'), formatTime(job.finishedAt)],
      ],
      { id: 'job-facts' },
    ),
    h('details', { id: 'job-sql' }, h('summary', {}, t('sql')), h('pre', {}, job.sql)),
    editable ? h('div', { class: 'actions' }, h('button', { id: 'edit-as-new', class: 'secondary', onclick: editAsNew }, t('editAsNew'))) : null,
  );
  if (['queued', 'running', 'checked'].includes(job.status)) {
    setTimeout(() => location.hash === `#jobs/${id}` && rerender('poll'), 1000);
    return panel;
  }
  if (job.status !== 'released') return panel;
  const result = await api('GET', `/v1/jobs/${encodeURIComponent(id)}/result`);
  panel.append(
    h('h3', {}, t('result')),
    ...checkedOutput(result.columns, result.rows, result.manifest, { id: 'result-table' }),
    h('p', {}, h('a', { id: 'result-csv', href: '#', onclick: (event: Event) => (event.preventDefault(), void downloadResult(id)) }, t('downloadCsv'))),
    h('details', {}, h('summary', {}, t('receipt')), h('code', { class: 'wrap' }, result.receipt)),
  );
  return panel;
}

/**
 * What a job is doing, in the page's language: the server's stage is English, written for logs and the API. A job
 * held because too many of its shape ran in a day says so (recognised by the stage's one spelling, `job-stage.ts`).
 */
function jobStage(job: { status: string; stage: string | null; reviewersRequired: number }): string {
  if (job.status === 'queued') return t('stageQueued');
  if (job.status === 'running' || job.status === 'checked') return t('stageRunning');
  if (job.status === 'in_review') return `${t('stageInReview').replace('{n}', String(job.reviewersRequired))}${isSameShapeHold(job.stage) ? ` · ${t('stageHeldRepeated')}` : ''}`;
  return '';
}

/** Noise figures counted in fine steps have fractional sensitivities and intervals: three decimals say enough. */
const threeDecimals = (value: number) => Number(value.toFixed(3));

/**
 * A checked output as operators and reviewers read it: suppressed cells marked with the rule that withheld them,
 * each rule explained once, and the noise of a differentially private output or the fit of a model.
 */
export function checkedOutput(columns: Array<{ name: string; role?: string; ci95HalfWidth?: number }>, rows: unknown[][], manifest: any, attributes: Record<string, string> = {}): HTMLElement[] {
  const suppressed = new Map<number, { code: string; reason: string }>((manifest?.suppressedRows ?? []).map((entry: { row: number; code: string; reason: string }) => [entry.row, entry]));
  // A total's rolled-up keys (ROLLUP, CUBE, GROUPING SETS) are "all", whatever else the row shows.
  const totals = new Map<number, Set<string>>((manifest?.totals ?? []).map((entry: { row: number; over: string[] }) => [entry.row, new Set(entry.over)]));
  const cells = rows.map((row, index) => {
    const why = suppressed.get(index);
    const over = totals.get(index);
    // A null in a withheld row was withheld; in a released row it is a NULL of the data (households have no
    // industry code), and must not look withheld.
    const shown = (value: unknown, column: number) =>
      value === null && over?.has(columns[column]!.name)
        ? h('span', { class: 'total', title: t('totalTitle') }, t('allValues'))
        : value === null
          ? why
            ? h('span', { class: 'suppressed', title: why.reason }, '■')
            : h('span', { class: 'null', title: t('nullValue') }, 'NULL')
          : typeof value === 'number'
            ? typeof columns[column]!.ci95HalfWidth === 'number'
              ? formatNoisyFigure(value, columns[column]!.ci95HalfWidth!)
              : formatFigure(value)
            : String(value);
    return [...row.map(shown), why ? badge(tValue('suppression', why.code), 'warn') : ''];
  });
  // The whole output in one line, counted from the manifest (a reviewer may be shown only its first rows).
  const total: number = manifest?.rowCount ?? rows.length;
  const byCode = Object.entries((manifest?.suppressedByCode ?? {}) as Record<string, number>).filter(([, count]) => count > 0);
  const withheld: number = manifest?.suppressedRows?.length ?? 0;
  const summary = t('outputSummary')
    .replace('{rows}', total.toLocaleString())
    .replace('{released}', (total - withheld).toLocaleString())
    .replace('{withheld}', withheld.toLocaleString());
  const detail = byCode.length ? ` (${byCode.map(([code, count]) => `${tValue('suppression', code)} ${count.toLocaleString()}`).join(' · ')})` : '';
  // Rows a HAVING or LIMIT applied after release left out are not listed, but the table checked is told.
  const checkedTable = manifest?.checkedTable as { rowCount: number; suppressedByCode: Record<string, number> } | undefined;
  const checkedNote = checkedTable
    ? t('checkedTableSummary')
        .replace('{rows}', checkedTable.rowCount.toLocaleString())
        .replace('{withheld}', Object.values(checkedTable.suppressedByCode).reduce((sum, count) => sum + count, 0).toLocaleString())
    : '';
  return [
    h('p', { class: 'output-summary' }, `${summary}${detail}${checkedNote}`),
    // A DP count or sum says its 95 % half-width in its header: the same for every cell of the column.
    table([...columns.map((column) => (typeof column.ci95HalfWidth === 'number' ? `${column.name} (± ${threeDecimals(column.ci95HalfWidth).toLocaleString()})` : column.role === 'derived' ? h('span', { class: 'derived', title: t('derivedTitle') }, `${column.name} ƒ`) : column.name)), ''], cells, attributes),
    h('ul', { class: 'muted' }, ...[...new Set([...suppressed.values()].map((entry) => `${tValue('suppression', entry.code)} (${entry.code}): ${entry.reason}`))].map((text) => h('li', {}, text))),
    // Noisy figures are shown to their noise's precision (figures.ts), so shown totals may differ from the sum of
    // the shown cells by rounding; the CSV has every digit.
    columns.some((column) => typeof column.ci95HalfWidth === 'number') ? h('p', { class: 'muted', id: 'noisy-precision' }, t('noisyPrecision')) : '',
    // Window functions' columns (docs/sandbox.md): from what is released, so a withheld cell counts in none of them.
    columns.some((column) => column.role === 'derived')
      ? h('p', { class: 'muted', id: 'derived-note' }, t('derivedColumns').replace('{names}', columns.filter((column) => column.role === 'derived').map((column) => column.name).join(currentLanguage() === 'zh' ? '、' : ', ')))
      : '',
    noiseSection(manifest?.differentialPrivacy, manifest?.model, Boolean(manifest?.totals?.length)) ?? '',
    modelSection(manifest?.model) ?? '',
  ].filter((element): element is HTMLElement => element !== '');
}

/** The released output as the API gives it in CSV (suppressed cells empty), saved for a spreadsheet. */
async function downloadResult(id: string): Promise<void> {
  saveCsv(await api<string>('GET', `/v1/jobs/${encodeURIComponent(id)}/result?format=csv`), `${id}.csv`);
}

/** For a released model: what was fitted and how well, from the manifest (the coefficients are the rows). */
function modelSection(model: any): HTMLElement | null {
  if (!model) return null;
  const figures: Array<[string, number | undefined]> = [
    [t('observations'), model.observations],
    [t('residualDf'), model.residualDegreesOfFreedom],
    ['R²', model.rSquared],
    [t('residualStandardError'), model.residualStandardError],
    [t('deviance'), model.deviance],
    [t('nullDeviance'), model.nullDeviance],
    [t('iterations'), model.iterations],
  ];
  return h(
    'div',
    { id: 'model-summary' },
    h('p', {}, h('code', {}, `${model.type}: ${model.target} ~ ${model.features.join(' + ')}`)),
    model.categoryColumns ? h('p', { class: 'muted' }, categoryLegend(model.categoryColumns)) : '',
    table(
      figures.filter(([, value]) => value !== undefined).map(([label]) => label),
      [figures.filter(([, value]) => value !== undefined).map(([, value]) => formatFigure(value!))],
    ),
  );
}

/** What each 0/1 feature of a category stands for: `customer_type_1 = enterprise (vs household)`. */
function categoryLegend(categoryColumns: Record<string, { baseline: string; columns: Record<string, string> }>): string {
  return Object.values(categoryColumns)
    .flatMap((category) => Object.entries(category.columns).map(([column, value]) => `${column} = ${value} (${t('versus')} ${category.baseline})`))
    .join(' · ');
}

/**
 * Before a DP job runs, what its noise will be: each figure's 95 % half-width (what an ε buys, to weigh before
 * spending it), and the contributors a key needs to be likely to appear when keys are chosen by partition selection.
 */
function expectedNoiseTable(noise: any): HTMLElement | string {
  if (!noise) return '';
  return h(
    'div',
    { id: 'expected-noise' },
    h('p', { class: 'muted' }, t('expectedNoise'), noise.newtonSteps ? ` ${t('perNewtonStep')} × ${noise.newtonSteps}` : ''),
    table(
      [t('statistic'), t('sensitivity'), t('ciHalfWidth')],
      noise.statistics.map((statistic: any) => [statistic.name, threeDecimals(statistic.sensitivity), `± ${threeDecimals(statistic.ci95HalfWidth)}`]),
    ),
    noise.partitionSelection ? h('p', { class: 'muted' }, `${t('partitionSelection')}: ${t('threshold')} ${noise.partitionSelection.threshold}`) : '',
    noise.consistentTotals === undefined ? '' : h('p', { class: 'muted', id: 'expected-totals' }, t(noise.consistentTotals ? 'totalsWillAddUp' : 'totalsNoisedAlone')),
  );
}

/** For a differentially private result (or model): each statistic's mechanism, ε, sensitivity, scale and 95 % interval. */
function noiseSection(dp: any, model: { type: string; iterations?: number } | undefined, hasTotals = false): HTMLElement | null {
  if (!dp) return null;
  return h(
    'section',
    { id: 'dp-noise' },
    h('h3', {}, t('noise')),
    h('p', {}, `ε = ${dp.epsilon} · δ = ${dp.delta} · ${dp.mechanism} · ≤ ${dp.maxRowsPerUnit} ${t('rowsPerUnit')}`),
    table(
      [t('statistic'), 'mechanism', 'ε', t('sensitivity'), t('scale'), t('ciHalfWidth')],
      dp.statistics.map((statistic: any) => [statistic.name, statistic.mechanism, Number(statistic.epsilon.toFixed(6)), threeDecimals(statistic.sensitivity), threeDecimals(statistic.scale), `± ${threeDecimals(statistic.ci95HalfWidth)}`]),
    ),
    dp.partitionSelection ? h('p', {}, `${t('partitionSelection')}: ε = ${dp.partitionSelection.epsilon}, δ = ${dp.partitionSelection.delta}, ${t('threshold')} ${dp.partitionSelection.threshold}, ${dp.partitionSelection.cellsReleased} ${t('cellsReleased')}`) : null,
    // The server's note is English; in Chinese the page says first what the figures are of.
    currentLanguage() === 'zh'
      ? h(
          'p',
          { id: 'dp-bounded-note' },
          model?.type === 'logistic'
            ? `系数为从零开始的 ${model.iterations} 步牛顿迭代：每步按当前系数计算梯度 Σx(y−p) 与海森矩阵 Σp(1−p)xxᵀ（每个隐私单元至多 ${dp.maxRowsPerUnit} 行、特征截断至界限、目标截断至 0..1）并加噪声，预算在各步间均分；系数带有这些噪声，未迭代至收敛，不给出标准误。`
            : model
            ? `系数由加噪后的充分统计量（计数、Σx、Σxxᵀ、Σxy、Σy、Σy²）求解：每个隐私单元至多 ${dp.maxRowsPerUnit} 行、各值截断至界限；系数带有这些噪声，不给出标准误。`
            : `各数字按每个隐私单元至多 ${dp.maxRowsPerUnit} 行（计人数时至多 ${dp.maxRowsPerUnit} 个单元格）、求和值截断至界限后计算，再加噪声；并非原始数据的精确值。` +
              (!hasTotals
                ? ''
                : dp.consistentTotals
                  ? `小计与合计先各自加噪（每个分组集合分得一份隐私预算），再以最小二乘调整（不另耗预算），使计数与求和的合计等于各单元格之和${dp.statistics.some((statistic: any) => statistic.name.startsWith('count(DISTINCT')) ? '（去重人数不可相加，不作调整）' : ''}；计数因此可能带小数。`
                  : '小计与合计各自单独加噪（每个分组集合分得一份隐私预算），因此合计不等于各单元格噪声值之和。'),
        )
      : null,
    h('p', { class: 'muted' }, dp.note),
  );
}

/**
 * Privacy budgets: what each licence has spent of its ε (and δ) per dataset. A regulator also sets a cap and resets
 * what is spent, each with the reason the audit leaf keeps (the server refuses either without one).
 */
export async function budgetsPage(rerender: () => void, role: string): Promise<HTMLElement> {
  const regulating = role === 'regulator';
  const [{ budgets }, licences] = await Promise.all([
    api<{ budgets: any[] }>('GET', '/v1/budgets'),
    regulating ? api<{ licences: any[] }>('GET', '/v1/licences').then((answer) => answer.licences) : Promise.resolve([] as any[]),
  ]);
  const bar = (spent: number, cap: number) => {
    const share = cap > 0 ? Math.min(1, spent / cap) : 0;
    return h('div', { class: 'bar', title: `${spent} / ${cap}` }, h('div', { class: 'fill', style: `width:${(share * 100).toFixed(1)}%` }));
  };
  const message = h('p', { class: 'error', id: 'budget-message' });
  const licenceNamed = new Map(licences.map((licence) => [licence.id, licence]));
  const licenceCell = (licenceId: string) => {
    const licence = licenceNamed.get(licenceId);
    return licence ? h('span', {}, `${licence.operatorId} · ${licence.title}`, h('br'), h('small', { class: 'muted' }, licenceId)) : licenceId;
  };
  return h(
    'div',
    {},
    regulating ? setBudgetForm(licences.filter((licence) => licence.status === 'active'), rerender) : '',
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, t('budgets')),
      message,
      budgets.length
        ? table(
            [t('licences'), t('datasets'), 'ε ' + t('spent'), 'ε ' + t('remaining'), '', 'δ ' + t('spent'), t('deltaCap'), ...(regulating ? [''] : [])],
            budgets.map((budget) => [
              licenceCell(budget.licenceId),
              budget.datasetId,
              budget.epsilonSpent,
              budget.epsilonRemaining,
              bar(budget.epsilonSpent, budget.epsilonCap),
              budget.deltaSpent,
              budget.deltaCap,
              ...(regulating ? [resetBudgetAction(budget, message, rerender)] : []),
            ]),
          )
        : h('p', { class: 'muted', id: 'no-budgets' }, t('noBudgets')),
    ),
  );
}

/** A regulator's cap for a licence on one of the datasets it covers: ε, δ if the jobs need one, and why. */
function setBudgetForm(licences: any[], rerender: () => void): HTMLElement {
  const licence = h('select', { id: 'budget-licence' }, ...licences.map((entry) => h('option', { value: entry.id }, `${entry.operatorId} · ${entry.title} (${entry.maxGrade})`)));
  const dataset = h('select', { id: 'budget-dataset' });
  const showScope = () => {
    const chosen = licences.find((entry) => entry.id === licence.value);
    dataset.replaceChildren(...(chosen?.scope ?? []).map((entry: { dataset: string }) => h('option', { value: entry.dataset }, entry.dataset)));
  };
  licence.addEventListener('change', showScope);
  showScope();
  const epsilon = h('input', { id: 'budget-epsilon', type: 'number', min: 0.001, max: 100, step: 0.1, value: 1, style: 'max-width:140px' });
  const delta = h('input', { id: 'budget-delta', placeholder: '1e-6', style: 'max-width:140px' });
  const reason = h('input', { id: 'budget-reason', placeholder: t('budgetReasonHint') });
  const message = h('p', { class: 'error' });
  const set = async () => {
    // No stock phrase stands in for a reason nobody wrote.
    if (!reason.value.trim()) return void (message.textContent = t('reasonRequired'));
    const deltaText = delta.value.trim();
    const body = { licenceId: licence.value, datasetId: dataset.value, epsilonCap: Number(epsilon.value), ...(deltaText ? { deltaCap: Number(deltaText) } : {}), reason: reason.value.trim() };
    try {
      await api('POST', '/v1/budgets', body);
      rerender();
    } catch (error) {
      message.textContent = errorText(error);
    }
  };
  return h(
    'div',
    { class: 'panel', id: 'set-budget-panel' },
    h('h2', {}, t('setBudget')),
    h('p', { class: 'muted' }, t('setBudgetIntro')),
    labelled(t('licences'), licence),
    labelled(t('datasets'), dataset),
    labelled(t('epsilonCap'), epsilon),
    labelled(`${t('deltaCap')} (${t('optional')})`, delta),
    labelled(t('reason'), reason),
    h('div', { class: 'actions' }, h('button', { id: 'set-budget', onclick: () => void set() }, t('setBudget'))),
    message,
  );
}

/** Resetting what a budget has spent (a new licence year, say), with the reason the audit leaf keeps. */
function resetBudgetAction(budget: { id: string; epsilonSpent: number; deltaSpent: number }, message: HTMLElement, rerender: () => void): HTMLElement | string {
  if (budget.epsilonSpent === 0 && budget.deltaSpent === 0) return '';
  const reason = h('input', { class: 'reason', placeholder: t('reason') });
  const reset = async () => {
    if (!reason.value.trim()) return void (message.textContent = t('reasonRequired'));
    try {
      await api('POST', `/v1/budgets/${encodeURIComponent(budget.id)}/reset`, { reason: reason.value.trim() });
      rerender();
    } catch (error) {
      message.textContent = errorText(error);
    }
  };
  return h('div', { class: 'actions', 'data-budget': budget.id }, reason, h('button', { class: 'secondary reset-budget', onclick: () => void reset() }, t('resetBudget')));
}
