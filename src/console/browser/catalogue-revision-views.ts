import { api } from './api.js';
import { badge, formatTime, h, statusBadge, table } from './dom.js';
import { catalogueChoices, control, labelled } from './form-controls.js';
import { action, sendForm } from './governance-views.js';
import { inLanguage, t } from './i18n.js';

/**
 * Catalogue changes (measures art. 10). A source institution proposes a change to one of its entries — titles,
 * descriptions (as registered, and in Chinese), category, grade, open data, sharing type and basis, legal basis,
 * update frequency, and each column's class and descriptions — with a note saying why; the data centre or a
 * regulator other than the proposer publishes or rejects it, reading the change as a diff. Only a published
 * revision changes the entry. Columns' names and types, the key and the privacy unit are not offered: once data is
 * loaded a new structure is a new dataset (the server refuses it either way).
 */
type Me = { id: string; role: string; institutionId: string | null };
type Column = { name: string; type: string; class: string; nullable: boolean; description: string; descriptionZh?: string };
type Entry = {
  id: string;
  title: string;
  titleZh: string;
  description: string;
  descriptionZh: string | null;
  category: string;
  grade: string;
  openData: boolean;
  sharingType: string;
  sharingBasis: string | null;
  legalBasis: string;
  updateFrequency: string;
  columns: Column[];
  institution: { id: string };
};
type Revision = {
  dataset: string;
  datasetTitleZh: string;
  datasetTitle: string;
  revision: number;
  status: string;
  note: string | null;
  diff: Array<{ field: string; from: unknown; to: unknown }>;
  proposedBy: string;
  reviewedBy: string | null;
  reviewReason: string | null;
  createdAt: string;
  decidedAt: string | null;
};

/** A diff value as a reader takes it in: a word for null, text as it is, anything else (a whole column) as JSON. */
const shown = (value: unknown): string => (value === null || value === undefined ? '—' : typeof value === 'string' ? value : JSON.stringify(value));

function diffTable(revision: Revision): HTMLTableElement {
  return table(
    [t('field'), t('before'), t('after')],
    revision.diff.map((entry) => [h('code', {}, entry.field), h('span', { class: 'muted' }, shown(entry.from)), shown(entry.to)]),
    { class: 'diff' },
  );
}

/**
 * The proposal form for one entry, filled with its current values. Only what the clerk changed is sent; a changed
 * column sends the whole column list, which is how the API takes columns.
 */
function proposalForm(entry: Entry, rerender: () => void): HTMLElement {
  const text = (id: string, value: string) => h('input', { id, value });
  const area = (id: string, value: string) => h('textarea', { id, rows: 2 }, value);
  const fields = {
    titleZh: text('rev-title-zh', entry.titleZh),
    title: text('rev-title', entry.title),
    description: area('rev-description', entry.description),
    descriptionZh: area('rev-description-zh', entry.descriptionZh ?? ''),
    category: text('rev-category', entry.category),
    grade: control({ key: 'grade', kind: { choices: catalogueChoices.grades } }, entry.grade, 'rev-grade'),
    sharingType: control({ key: 'sharingType', kind: { choices: catalogueChoices.sharingTypes, phrase: 'sharing' } }, entry.sharingType, 'rev-sharing-type'),
    sharingBasis: area('rev-sharing-basis', entry.sharingBasis ?? ''),
    legalBasis: area('rev-legal-basis', entry.legalBasis),
    updateFrequency: control({ key: 'updateFrequency', kind: { choices: catalogueChoices.frequencies, phrase: 'frequency' } }, entry.updateFrequency, 'rev-frequency'),
  };
  const openData = h('input', { type: 'checkbox', id: 'rev-open-data', checked: entry.openData });
  const columnControls = entry.columns.map((column) => ({
    column,
    class: control({ key: 'class', kind: { choices: catalogueChoices.columnClasses, phrase: 'class' } }, column.class, `rev-class-${column.name}`),
    description: h('input', { id: `rev-column-${column.name}`, value: column.description }),
    descriptionZh: h('input', { id: `rev-column-zh-${column.name}`, value: column.descriptionZh ?? '' }),
  }));
  const note = h('textarea', { id: 'rev-note', rows: 2, placeholder: t('revisionNoteHint') });
  const outcome = h('div', { id: 'rev-outcome', class: 'verdict' });

  const changes = (): Record<string, unknown> => {
    const changed: Record<string, unknown> = {};
    for (const [name, input] of Object.entries(fields)) {
      // A textarea gives its text with LF line ends, whatever the stored text has: compare it that way, or an
      // untouched description stored with CRLF would be proposed as changed.
      const before = ((entry as unknown as Record<string, string | null>)[name] ?? '').replace(/\r\n?/g, '\n');
      // An emptied basis or Chinese description is removed (null); the server checks a basis against the sharing type.
      if (input.value !== before) changed[name] = (name === 'sharingBasis' || name === 'descriptionZh') && input.value.trim() === '' ? null : input.value;
    }
    if (openData.checked !== entry.openData) changed.openData = openData.checked;
    const columns = columnControls.map(({ column, class: columnClass, description, descriptionZh }) => {
      const { descriptionZh: _before, ...rest } = column;
      return { ...rest, class: columnClass.value, description: description.value, ...(descriptionZh.value.trim() ? { descriptionZh: descriptionZh.value } : {}) };
    });
    const differs = (column: Column, index: number) => {
      const before = entry.columns[index]!;
      return column.class !== before.class || column.description !== before.description || (column.descriptionZh ?? '') !== (before.descriptionZh ?? '');
    };
    if (columns.some(differs)) changed.columns = columns;
    return changed;
  };
  const propose = async () => {
    const changed = changes();
    if (Object.keys(changed).length === 0) return void outcome.replaceChildren(h('p', { class: 'error' }, t('nothingChanged')));
    if (!note.value.trim()) return void outcome.replaceChildren(h('p', { class: 'error' }, t('revisionNoteRequired')));
    const revision = await sendForm(
      outcome,
      () => api<Revision>('POST', `/v1/datasets/${encodeURIComponent(entry.id)}/revisions`, { note: note.value.trim(), changes: changed }),
      (answer) => [h('p', {}, badge(`r${answer.revision}`, 'ok'), ' ', t('revisionProposed')), diffTable(answer)],
    );
    if (revision) setTimeout(rerender, 1200);
  };
  return h(
    'section',
    { class: 'card', id: 'revision-form', 'data-dataset': entry.id },
    h('h3', {}, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`),
    h(
      'div',
      { class: 'grid' },
      labelled(t('titleZh'), fields.titleZh),
      labelled(t('titleEn'), fields.title),
      labelled(t('category'), fields.category),
      labelled(t('grade'), fields.grade),
      labelled(t('sharingType'), fields.sharingType),
      labelled(t('updates'), fields.updateFrequency),
    ),
    labelled(t('description'), fields.description),
    labelled(t('descriptionZh'), fields.descriptionZh),
    labelled(t('sharingBasis'), fields.sharingBasis),
    labelled(t('legalBasis'), fields.legalBasis),
    h('label', { class: 'check' }, openData, ` ${t('openData')}`),
    table(
      [t('columns'), t('columnType'), t('columnClass'), t('description'), t('descriptionZh')],
      columnControls.map((row) => [h('code', {}, row.column.name), row.column.type, row.class, row.description, row.descriptionZh]),
      { id: 'revision-columns' },
    ),
    labelled(t('revisionNote'), note),
    h('div', { class: 'actions' }, h('button', { id: 'rev-propose', onclick: () => void propose() }, t('proposeRevision'))),
    outcome,
  );
}

/** Whether a revision waits on the signed-in person's review: proposed, and proposed by someone else (art. 10). */
const revisionAwaits = (me: Me, revision: Revision) => (me.role === 'admin' || me.role === 'regulator') && revision.status === 'proposed' && revision.proposedBy !== me.id;

/** How many catalogue revisions wait on the signed-in reviewer (the menu's count). */
export async function revisionsWaiting(me: Me): Promise<number> {
  const { revisions } = await api<{ revisions: Revision[] }>('GET', '/v1/catalogue-revisions?status=proposed&limit=200');
  return revisions.filter((revision) => revisionAwaits(me, revision)).length;
}

/** One revision: what changes, who proposed it and why, and — for a reviewer who did not propose it — the decision. */
function revisionCard(revision: Revision, me: Me, rerender: () => void): HTMLElement {
  const reviewer = (me.role === 'admin' || me.role === 'regulator') && revision.status === 'proposed';
  const path = `/v1/datasets/${encodeURIComponent(revision.dataset)}/revisions/${revision.revision}/review`;
  const reason = h('input', { class: 'reason', placeholder: t('reason') });
  return h(
    'section',
    { class: 'card', 'data-revision': `${revision.dataset}:${revision.revision}` },
    h('h3', {}, `${inLanguage(revision.datasetTitleZh, revision.datasetTitle)} · `, h('code', {}, revision.dataset), ` r${revision.revision} `, statusBadge(revision.status)),
    h('p', { class: 'muted' }, `${t('proposedBy')} ${revision.proposedBy} · ${formatTime(revision.createdAt)}${revision.reviewedBy ? ` · ${t('reviewedBy')} ${revision.reviewedBy} · ${formatTime(revision.decidedAt)}` : ''}`),
    revision.note ? h('p', {}, `${t('revisionNote')}: ${revision.note}`) : '',
    diffTable(revision),
    revision.reviewReason ? h('p', {}, `${t('reason')}: ${revision.reviewReason}`) : '',
    reviewer && revision.proposedBy === me.id ? h('p', { class: 'muted' }, t('ownProposal')) : '',
    revisionAwaits(me, revision)
      ? h(
          'div',
          { class: 'actions' },
          action(t('publishRevision'), () => api('POST', path, { decision: 'publish' }), rerender, { class: 'approve' }),
          reason,
          action(t('rejectRevision'), () => api('POST', path, { decision: 'reject', reason: reason.value }), rerender, { class: 'reject secondary' }),
        )
      : '',
  );
}

export async function revisionsPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const own = me.role === 'institution' && me.institutionId ? `&institution=${encodeURIComponent(me.institutionId)}` : '';
  const [pending, decided] = await Promise.all([
    api<{ revisions: Revision[] }>('GET', `/v1/catalogue-revisions?status=proposed&limit=200${own}`),
    api<{ revisions: Revision[] }>('GET', `/v1/catalogue-revisions?limit=40${own}`),
  ]);
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('catalogueRevisions')), h('p', { class: 'muted' }, t('catalogueRevisionsIntro')));
  if (me.role === 'institution') {
    const { datasets } = await api<{ datasets: Entry[] }>('GET', '/v1/datasets');
    const entries = datasets.filter((entry) => entry.institution.id === me.institutionId);
    const holder = h('div', {});
    const chooser = h('select', { id: 'rev-dataset', onchange: () => holder.replaceChildren(proposalForm(entries.find((entry) => entry.id === chooser.value)!, rerender)) }, ...entries.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`)));
    if (entries[0]) holder.append(proposalForm(entries[0], rerender));
    panel.append(h('h3', {}, t('proposeRevision')), entries.length ? h('div', {}, chooser, holder) : h('p', { class: 'muted' }, t('nothing')));
  }
  panel.append(h('h3', {}, t('underReview')));
  panel.append(...(pending.revisions.length ? pending.revisions.map((revision) => revisionCard(revision, me, rerender)) : [h('p', { class: 'muted', id: 'no-pending-revisions' }, t('nothing'))]));
  const changes = decided.revisions.filter((revision) => revision.status !== 'proposed');
  panel.append(h('h3', {}, t('recentlyDecided')), ...(changes.length ? changes.map((revision) => revisionCard(revision, me, rerender)) : [h('p', { class: 'muted' }, t('nothing'))]));
  return panel;
}
