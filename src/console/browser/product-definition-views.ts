import { scoringInputNames, type ScoringCategories } from '../../products/client/scoring-features.js';
import { api, ApiError } from './api.js';
import { badge, h } from './dom.js';
import { control, filledValue, labelled, rowsEditor, type Field } from './form-controls.js';
import { refusal, sendForm } from './governance-views.js';
import { inLanguage, t } from './i18n.js';

/**
 * An operator defines a product (measures ch. 4) in the console: a verification product over one dataset of its
 * licence — the inputs a consumer sends, which of them find the subject and which are compared with its record,
 * and an optional fixed condition — or a scoring product serving one of its released models. The server checks
 * the definition like a job (licence, column classes, the analyser) and stores a draft for a regulator; its
 * refusal is shown with each field at fault.
 */
type Values = Record<string, unknown>;

const inputFields: Field[] = [
  { key: 'name', label: 'inputName', kind: 'text' },
  { key: 'description', label: 'description', kind: 'text' },
  { key: 'example', label: 'example', kind: 'text' },
  { key: 'checksum', label: 'checkCharacter', kind: { choices: ['gb11643', 'gb32100'], empty: true } },
  { key: 'pattern', label: 'pattern', kind: 'text' },
];
const bindingFields: Field[] = [
  { key: 'input', label: 'inputName', kind: 'text' },
  { key: 'column', label: 'column', kind: 'text' },
];
const featureFields: Field[] = [
  { key: 'name', label: 'feature', kind: 'text' },
  { key: 'description', label: 'description', kind: 'text' },
  { key: 'min', label: 'minimum', kind: 'number' },
  { key: 'max', label: 'maximum', kind: 'number' },
];

const field = (key: string, kind: Field['kind'], value?: unknown) => control({ key, kind }, value, `product-${key}`);

export async function productDefinitionForm(rerender: () => void): Promise<HTMLElement> {
  const [{ datasets }, { licences }, { jobs }] = await Promise.all([
    api<{ datasets: Array<{ id: string; title: string; titleZh: string }> }>('GET', '/v1/datasets'),
    api<{ licences: Array<{ status: string; scope: Array<{ dataset: string }> }> }>('GET', '/v1/licences'),
    api<{ jobs: Array<{ id: string; kind: string; purpose: string }> }>('GET', '/v1/jobs?status=released&kind=model&limit=200'),
  ]);
  const licensed = new Set(licences.filter((licence) => licence.status === 'active').flatMap((licence) => licence.scope.map((entry) => entry.dataset)));
  const kind = field('kind', { choices: ['verification', 'scoring'] });
  const id = field('id', 'text');
  const titleZh = field('titleZh', 'text');
  const title = field('title', 'text');
  const terms = h('textarea', { id: 'product-terms', rows: 2 });

  const outcome = h('div', { id: 'product-outcome', class: 'verdict' });

  // Verification: the dataset, the inputs, the subject and the claims, an optional fixed condition.
  const dataset = h('select', { id: 'product-dataset' }, ...datasets.filter((entry) => licensed.has(entry.id)).map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`)));
  const inputs = rowsEditor(inputFields, [{}], 'addItem', { id: 'product-inputs' });
  const subject = rowsEditor(bindingFields, [{}], 'addItem', { id: 'product-subject' });
  const claims = rowsEditor(bindingFields, [], 'addItem', { id: 'product-claims' });
  const conditionRows = field('condition-rows', 'text');
  const conditionRequire = field('condition-require', 'text');
  const minRows = field('condition-min-rows', 'number');
  const recentColumn = field('condition-recent-column', 'text');
  const recentMonths = field('condition-recent-months', 'number');
  const perSubject = field('per-subject-daily-limit', 'number', 5);
  const verification = h(
    'div',
    { id: 'product-verification' },
    labelled(t('datasets'), dataset),
    h('label', {}, t('productInputs')),
    inputs.element,
    h('label', {}, t('subjectBindings')),
    subject.element,
    h('label', {}, t('claimBindings')),
    claims.element,
    h('div', { class: 'grid' }, labelled(t('conditionRows'), conditionRows), labelled(t('conditionRequire'), conditionRequire), labelled(t('conditionMinRows'), minRows), labelled(t('conditionRecentColumn'), recentColumn), labelled(t('conditionRecentMonths'), recentMonths), labelled(t('perSubjectDailyLimit'), perSubject)),
  );

  // Scoring: one of the operator's released models; its features are filled in from the release.
  const models = jobs.filter((job) => job.kind === 'model');
  const job = h('select', { id: 'product-job' }, h('option', { value: '' }, t('notSet')), ...models.map((entry) => h('option', { value: entry.id }, `${entry.purpose} · ${entry.id.slice(0, 16)}`)));
  const features = rowsEditor(featureFields, [], 'addItem', { id: 'product-features' });
  const dailyCalls = field('daily-calls', 'number', 1000);
  job.addEventListener('change', () => {
    if (!job.value) return;
    void api<{ manifest: { model?: { features: string[]; categoryColumns?: ScoringCategories } } }>('GET', `/v1/jobs/${encodeURIComponent(job.value)}/result`).then(
      (result) => {
        features.element.querySelector('tbody')!.replaceChildren();
        // A category is described once, by its name: consumers send its value.
        const model = result.manifest.model;
        for (const name of scoringInputNames(model?.features ?? [], model?.categoryColumns ?? {})) features.addRow({ name });
      },
      (error: unknown) => {
        if (!(error instanceof ApiError)) throw error;
        outcome.replaceChildren(...refusal(error));
      },
    );
  });
  const scoring = h('div', { id: 'product-scoring' }, labelled(t('sourceJob'), job), h('label', {}, t('productFeatures')), features.element, labelled(t('dailyCallsPerConsumer'), dailyCalls));
  const showKind = () => {
    verification.hidden = kind.value !== 'verification';
    scoring.hidden = kind.value !== 'scoring';
  };
  kind.addEventListener('change', showKind);
  showKind();

  const spec = (): Values => {
    if (kind.value === 'scoring') {
      return { kind: 'scoring', job: job.value, features: features.values(), ...(filledValue(dailyCalls) !== undefined ? { dailyCallsPerConsumer: filledValue(dailyCalls) } : {}) };
    }
    const require = filledValue(conditionRequire);
    const condition =
      require === undefined
        ? undefined
        : {
            require,
            ...(filledValue(conditionRows) !== undefined ? { rows: filledValue(conditionRows) } : {}),
            ...(filledValue(minRows) !== undefined ? { minRows: filledValue(minRows) } : {}),
            ...(filledValue(recentColumn) !== undefined ? { recentMonths: { column: filledValue(recentColumn), months: filledValue(recentMonths) } } : {}),
          };
    return {
      kind: 'verification',
      dataset: dataset.value,
      inputs: inputs.values(),
      subject: subject.values(),
      claims: claims.values(),
      ...(condition ? { condition } : {}),
      ...(filledValue(perSubject) !== undefined ? { perSubjectDailyLimit: filledValue(perSubject) } : {}),
    };
  };
  const define = async () => {
    const product = await sendForm(
      outcome,
      () => api<{ id: string; status: string }>('POST', '/v1/products', { id: id.value.trim(), title: title.value.trim(), titleZh: titleZh.value.trim(), terms: terms.value.trim(), spec: spec() }),
      (answer) => [h('p', {}, badge(t('productDefined'), 'ok'), ` ${answer.id}`)],
    );
    if (product) setTimeout(rerender, 1200);
  };
  return h(
    'section',
    { class: 'card', id: 'product-form' },
    h('h3', {}, t('defineProduct')),
    h('p', { class: 'muted' }, t('defineProductIntro')),
    h('div', { class: 'grid' }, labelled(t('productKind'), kind), labelled(t('productId'), id), labelled(t('titleZh'), titleZh), labelled(t('titleEn'), title)),
    labelled(t('terms'), terms),
    verification,
    scoring,
    h('div', { class: 'actions' }, h('button', { id: 'product-define', type: 'button', onclick: () => void define() }, t('defineProduct'))),
    outcome,
  );
}
