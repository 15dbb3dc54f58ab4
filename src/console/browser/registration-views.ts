import { api } from './api.js';
import { badge, formatTime, h, statusBadge, table } from './dom.js';
import { action, sendForm } from './governance-views.js';
import { catalogueChoices, control, filledValue, labelled, rowsEditor, type Field } from './form-controls.js';
import { t, tValue } from './i18n.js';

/**
 * Data registration (measures art. 8) in the console. A public body writes a project or system in full — basic
 * information, table schemas, unstructured data, data procured from outside — and submits it; the technical
 * review answers at once with its findings, and a returned registration is corrected here and resubmitted. The
 * data centre reads the findings and approves (the tables enter the catalogue and the registration is filed) or
 * returns it with reasons.
 *
 * The form sends what was filled in and leaves empty fields out: the review, not the form, says what is missing,
 * so a clerk can file what they know and learn what to add (a table without a grade is a finding, not an error).
 */
type Me = { id: string; role: string; institutionId: string | null };
type Values = Record<string, unknown>;

const columnTypes = ['VARCHAR', 'BIGINT', 'INTEGER', 'DOUBLE', 'DECIMAL(18,2)', 'DATE', 'TIMESTAMP', 'BOOLEAN'];

/**
 * A review finding in the reader's language where its code has a phrase; a schema finding (`INVALID`) keeps the
 * server's words, which name the rule broken; findings stored before codes existed show as they were written.
 */
function findingText(finding: { problem: string; code?: string }): string {
  if (!finding.code || finding.code === 'INVALID') return finding.problem;
  const phrase = tValue('finding', finding.code);
  return phrase === finding.code ? finding.problem : phrase;
}

const findingsTable = (findings: Array<{ path: string; problem: string; code?: string }>) =>
  findings.length ? table([t('findings'), ''], findings.map((finding) => [h('code', {}, finding.path || '—'), findingText(finding)]), { class: 'findings' }) : h('p', {}, badge(t('reviewClean'), 'ok'));

const columnFields: Field[] = [
  { key: 'name', label: 'columnName', kind: 'text' },
  { key: 'type', label: 'columnType', kind: 'type' },
  { key: 'class', label: 'columnClass', kind: { choices: catalogueChoices.columnClasses, phrase: 'class', empty: true } },
  { key: 'nullable', label: 'nullable', kind: 'check' },
  { key: 'description', label: 'description', kind: 'text' },
  { key: 'descriptionZh', label: 'descriptionZh', kind: 'text' },
];
const tableFields: Field[] = [
  { key: 'id', label: 'tableId', kind: 'text' },
  { key: 'titleZh', label: 'titleZh', kind: 'text' },
  { key: 'title', label: 'titleEn', kind: 'text' },
  { key: 'category', label: 'category', kind: 'text' },
  { key: 'grade', label: 'grade', kind: { choices: catalogueChoices.grades, empty: true } },
  { key: 'sharingType', label: 'sharingType', kind: { choices: catalogueChoices.sharingTypes, phrase: 'sharing' } },
  { key: 'updateFrequency', label: 'updates', kind: { choices: catalogueChoices.frequencies, phrase: 'frequency' } },
  { key: 'privacyUnit', label: 'privacyUnit', kind: 'text' },
  { key: 'uniqueKey', label: 'uniqueKey', kind: 'text' },
  { key: 'description', label: 'description', kind: 'text' },
  { key: 'descriptionZh', label: 'descriptionZh', kind: 'text' },
  { key: 'sharingBasis', label: 'sharingBasis', kind: 'text' },
  { key: 'legalBasis', label: 'legalBasis', kind: 'text' },
  { key: 'openData', label: 'openData', kind: 'check' },
];

/**
 * The names in a CSV file's first line, read in this browser from at most its first 64 KiB: a clerk lists a
 * table's columns from a sample file without any of it leaving the page.
 */
async function headerNames(file: File): Promise<string[]> {
  const text = await file.slice(0, 65_536).text();
  const line = text.replace(/^\uFEFF/, '').split(/\r?\n/)[0] ?? '';
  return line.split(',').map((name) => name.trim().replace(/^"(.*)"$/, '$1')).filter((name) => name !== '');
}

/** One table of the registration: its catalogue fields and its columns. */
function tableEditor(initial: Values, onRemove: (element: HTMLElement) => void) {
  const controls = tableFields.map((field) => ({ field, element: control(field, field.key === 'uniqueKey' && Array.isArray(initial.uniqueKey) ? initial.uniqueKey.join(', ') : initial[field.key]) }));
  const columns = rowsEditor(columnFields, Array.isArray(initial.columns) ? (initial.columns as Values[]) : [], 'addColumn', { class: 'columns-editor' });
  const header = h('input', { type: 'file', accept: '.csv', class: 'csv-header' });
  header.addEventListener('change', () => {
    const file = header.files?.[0];
    if (file) void headerNames(file).then((names) => names.forEach((name) => columns.addRow({ name, type: 'VARCHAR', nullable: true })));
  });
  const element: HTMLElement = h(
    'section',
    { class: 'card table-editor' },
    h('div', { class: 'grid' }, ...controls.map(({ field, element: input }) => (field.kind === 'check' ? h('label', { class: 'check' }, input, ` ${t(field.label)}`) : h('div', {}, h('label', {}, t(field.label)), input)))),
    h('label', {}, t('columns')),
    columns.element,
    h('label', {}, t('columnsFromCsv')),
    header,
    h('div', { class: 'actions' }, h('button', { class: 'secondary', type: 'button', onclick: () => onRemove(element) }, t('removeTable'))),
  );
  const values = (): Values => {
    const entry: Values = {};
    for (const { field, element: input } of controls) {
      const value = filledValue(input);
      if (value === undefined) continue;
      entry[field.key] = field.key === 'uniqueKey' ? String(value).split(',').map((name) => name.trim()).filter(Boolean) : value;
    }
    entry.columns = columns.values();
    return entry;
  };
  return { element, values };
}

/** The registration form: new, or a returned registration corrected and resubmitted (`existing`). */
function registrationForm(rerender: () => void, existing?: { id: string; content: Values }): HTMLElement {
  const content = existing?.content ?? {};
  const system = (content.system ?? {}) as Values;
  const kind = control({ key: 'kind', kind: { choices: ['project', 'system'], phrase: 'registrationKind' } }, content.kind ?? 'project');
  kind.id = 'reg-kind';
  const name = h('input', { id: 'reg-name', value: String(content.name ?? '') });
  const description = h('textarea', { id: 'reg-description', rows: 2 }, String(content.description ?? ''));
  const systemFields: Field[] = [
    { key: 'ownerDepartment', label: 'ownerDepartment', kind: 'text' },
    { key: 'contractor', label: 'contractor', kind: 'text' },
    { key: 'deployment', label: 'deployment', kind: 'text' },
    { key: 'liveSince', label: 'liveSince', kind: 'date' },
    { key: 'contact', label: 'contact', kind: 'text' },
  ];
  const systemControls = systemFields.map((field) => ({ field, element: control(field, system[field.key]) }));
  const tables: Array<ReturnType<typeof tableEditor>> = [];
  const tableHolder = h('div', { id: 'reg-tables' });
  const addTable = (initial: Values = {}) => {
    const editor = tableEditor(initial, (element) => {
      element.remove();
      tables.splice(tables.indexOf(editor), 1);
    });
    tables.push(editor);
    tableHolder.append(editor.element);
  };
  for (const initial of (content.tables ?? []) as Values[]) addTable(initial);
  const gradeChoice: Field = { key: 'grade', label: 'grade', kind: { choices: catalogueChoices.grades, empty: true } };
  const unstructured = rowsEditor(
    [{ key: 'name', label: 'itemName', kind: 'text' }, { key: 'format', label: 'format', kind: 'text' }, { key: 'volume', label: 'volume', kind: 'text' }, gradeChoice, { key: 'description', label: 'description', kind: 'text' }],
    (content.unstructured ?? []) as Values[],
    'addItem',
    { id: 'reg-unstructured' },
  );
  const procured = rowsEditor(
    [{ key: 'name', label: 'itemName', kind: 'text' }, { key: 'supplier', label: 'supplier', kind: 'text' }, { key: 'contract', label: 'contract', kind: 'text' }, { key: 'licenceTerms', label: 'licenceTerms', kind: 'text' }, gradeChoice, { key: 'description', label: 'description', kind: 'text' }],
    (content.procured ?? []) as Values[],
    'addItem',
    { id: 'reg-procured' },
  );
  const outcome = h('div', { id: 'reg-outcome', class: 'verdict' });

  const registration = (): Values => {
    const filled = (pairs: Array<[string, unknown]>) => Object.fromEntries(pairs.filter(([, value]) => value !== undefined));
    return filled([
      ['kind', filledValue(kind)],
      ['name', filledValue(name)],
      ['description', filledValue(description)],
      ['system', filled(systemControls.map(({ field, element }) => [field.key, filledValue(element)]))],
      ['tables', tables.map((editor) => editor.values())],
      ['unstructured', unstructured.values()],
      ['procured', procured.values()],
    ]);
  };
  const submit = () =>
    sendForm(
      outcome,
      () => api<{ id: string; status: string; findings: Array<{ path: string; problem: string; code?: string }> }>(existing ? 'PUT' : 'POST', existing ? `/v1/registrations/${existing.id}` : '/v1/registrations', registration()),
      (answer) => [h('p', { 'data-submitted': answer.id }, badge(t('registrationSubmitted'), 'ok')), findingsTable(answer.findings)],
    );
  return h(
    'section',
    { class: 'card', id: 'registration-form' },
    h('h3', {}, existing ? t('resubmitRegistration') : t('newRegistration')),
    h('datalist', { id: 'column-types' }, ...columnTypes.map((type) => h('option', { value: type }))),
    h('div', { class: 'grid' }, labelled(t('registrationKind'), kind), labelled(t('registrationName'), name)),
    labelled(t('description'), description),
    h('h4', {}, t('systemInformation')),
    h('div', { class: 'grid', id: 'reg-system' }, ...systemControls.map(({ field, element }) => labelled(t(field.label), element))),
    h('h4', {}, t('tables')),
    tableHolder,
    h('button', { class: 'secondary', type: 'button', id: 'reg-add-table', onclick: () => addTable() }, t('addTable')),
    h('h4', {}, t('unstructuredData')),
    unstructured.element,
    h('h4', {}, t('procuredData')),
    procured.element,
    h('div', { class: 'actions' }, h('button', { id: 'reg-submit', type: 'button', onclick: () => void submit() }, existing ? t('resubmit') : t('submitRegistration')), h('button', { class: 'secondary', type: 'button', onclick: rerender }, t('close'))),
    outcome,
  );
}

const registrationTone = (status: string) => (status === 'filed' ? 'ok' : status === 'returned' ? 'bad' : 'warn');

/** A registration waits on the data centre (admin) while submitted, and on its body once returned for correction. */
const registrationAwaits = (me: Me, registration: any) => (me.role === 'admin' && registration.status === 'submitted') || (me.role === 'institution' && registration.status === 'returned');

/** How many registrations wait on the signed-in person (the menu's count). */
export async function registrationsWaiting(me: Me): Promise<number> {
  const { registrations } = await api<{ registrations: any[] }>('GET', '/v1/registrations');
  return registrations.filter((registration) => registrationAwaits(me, registration)).length;
}

export async function registrationsPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const { registrations } = await api<{ registrations: any[] }>('GET', '/v1/registrations');
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('registrations')));
  const formHolder = h('div', {});
  if (me.role === 'institution') {
    panel.append(h('p', { class: 'muted' }, t('registrationIntro')), h('div', { class: 'actions' }, h('button', { id: 'reg-new', onclick: () => formHolder.replaceChildren(registrationForm(rerender)) }, t('newRegistration'))), formHolder);
  }
  if (registrations.length === 0) panel.append(h('p', { class: 'muted' }, t('nothing')));
  for (const registration of registrations) {
    const reasons = h('input', { class: 'reason', placeholder: t('reason') });
    const review =
      me.role === 'admin' && registrationAwaits(me, registration)
        ? h(
            'div',
            { class: 'actions' },
            action(t('approveAndFile'), () => api('POST', `/v1/registrations/${registration.id}/review`, { decision: 'approve' }), rerender, { class: 'approve' }),
            reasons,
            action(t('returnIt'), () => api('POST', `/v1/registrations/${registration.id}/review`, { decision: 'return', reasons: reasons.value ? [reasons.value] : [] }), rerender, { class: 'secondary' }),
          )
        : '';
    const correct =
      me.role === 'institution' && registrationAwaits(me, registration)
        ? h('div', { class: 'actions' }, h('button', { class: 'correct', onclick: () => (formHolder.replaceChildren(registrationForm(rerender, registration)), formHolder.scrollIntoView()) }, t('correctAndResubmit')))
        : '';
    panel.append(
      h(
        'section',
        { class: 'card', 'data-registration': registration.id },
        h('h3', {}, registration.name, ' ', statusBadge(registration.status, registrationTone(registration.status)), registration.filing ? ` ${registration.filing.number}` : ''),
        h('p', { class: 'muted' }, `${registration.institution} · ${tValue('registrationKind', registration.kind)} · ${t('submission')} ${registration.submission} · ${formatTime(registration.updatedAt)}`),
        findingsTable(registration.findings),
        registration.returnReasons ? h('p', {}, `${t('returned')}: ${registration.returnReasons.join('；')}`) : '',
        review,
        correct,
      ),
    );
  }
  return panel;
}
