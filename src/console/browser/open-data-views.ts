import { api } from './api.js';
import { formatTime, h, statusBadge, table } from './dom.js';
import { action, sendForm } from './governance-views.js';
import { inLanguage, t } from './i18n.js';

/**
 * Demands for open data (art. 20: opening is demand-driven, 以需求为导向): anyone signed in asks for data to be
 * opened and reads every demand with its answer; the data centre answers. Who made a demand shows only where the
 * server gives it (to its maker, the data centre and regulators).
 */
type Me = { role: string };
type Entry = { id: string; title: string; titleZh: string; openData: boolean };
type Demand = {
  id: string;
  subject: string;
  scenario: string;
  dataset: string | null;
  demandsForDataset: number | null;
  status: string;
  answer: string | null;
  metBy: string | null;
  mine: boolean;
  requestedBy: string | null;
  createdAt: string;
};

export async function openDataPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const [{ demands }, { datasets }] = await Promise.all([api<{ demands: Demand[] }>('GET', '/v1/open-data-demands'), api<{ datasets: Entry[] }>('GET', '/v1/datasets')]);
  const nameOf = (id: string) => {
    const entry = datasets.find((candidate) => candidate.id === id);
    return entry ? `${inLanguage(entry.titleZh, entry.title)} · ${id}` : id;
  };
  const open = datasets.filter((entry) => entry.openData);

  const subject = h('input', { id: 'demand-subject', placeholder: t('demandSubject'), maxlength: 200 });
  const scenario = h('textarea', { id: 'demand-scenario', placeholder: t('demandScenario'), maxlength: 2000, rows: 3 });
  const dataset = h('select', { id: 'demand-dataset' }, h('option', { value: '' }, t('demandNotCatalogued')), ...datasets.filter((entry) => !entry.openData).map((entry) => h('option', { value: entry.id }, nameOf(entry.id))));
  const outcome = h('div', { id: 'demand-outcome' });
  const send = () =>
    void sendForm(outcome, () => api('POST', '/v1/open-data-demands', { subject: subject.value, scenario: scenario.value, ...(dataset.value ? { dataset: dataset.value } : {}) }), () => []).then((made) => made && rerender());

  const answering = me.role === 'admin';
  const answerControls = (demand: Demand) => {
    if (!answering || demand.status !== 'open') return '';
    const reason = h('input', { class: 'answer', placeholder: t('demandAnswer') });
    const meeting = h('select', { class: 'met-by' }, ...open.map((entry) => h('option', { value: entry.id }, nameOf(entry.id))));
    const answer = (outcome: string, extra: Record<string, string> = {}) => () => api('POST', `/v1/open-data-demands/${demand.id}/answer`, { outcome, ...(reason.value ? { answer: reason.value } : {}), ...extra });
    return h(
      'div',
      {},
      reason,
      action(t('demandPlan'), answer('planned'), rerender, { class: 'plan' }),
      action(t('demandDecline'), answer('declined'), rerender, { class: 'secondary decline' }),
      meeting,
      action(t('demandMet'), () => answer('met', { dataset: meeting.value })(), rerender, { class: 'secondary met' }),
    );
  };

  // The server decides who sees requesters (toOpenDataDemandView); the column shows when it named another's.
  const seesRequesters = demands.some((demand) => !demand.mine && demand.requestedBy !== null);
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('openDataDemands')),
    h('p', { class: 'muted' }, t('openDataExplained')),
    h('section', { class: 'card' }, h('h3', {}, t('newDemand')), h('div', { class: 'form' }, subject, scenario, h('label', { for: 'demand-dataset' }, t('dataset')), dataset, h('div', { class: 'actions' }, h('button', { id: 'demand-send', onclick: send }, t('send')))), outcome),
    demands.length === 0
      ? h('p', { class: 'muted' }, t('nothing'))
      : table(
          [t('created'), t('demandSubject'), t('demandScenario'), t('dataset'), t('status'), t('demandAnswer'), ...(seesRequesters ? [t('demandRequester')] : []), ''],
          demands.map((demand) => [
            formatTime(demand.createdAt),
            h('span', {}, demand.subject, demand.mine ? ' ' : '', demand.mine ? h('span', { class: 'badge info' }, t('demandMine')) : ''),
            demand.scenario,
            demand.dataset ? `${nameOf(demand.dataset)}${(demand.demandsForDataset ?? 0) > 1 ? ` · ${t('demandsForDataset').replace('{n}', String(demand.demandsForDataset))}` : ''}` : '—',
            statusBadge(demand.status, demand.status === 'met' ? 'ok' : demand.status === 'declined' ? 'bad' : demand.status === 'planned' ? 'warn' : 'info', 'demandStatus'),
            h('span', {}, demand.answer ?? '', demand.metBy ? h('span', { class: 'muted' }, ` → ${nameOf(demand.metBy)}`) : ''),
            ...(seesRequesters ? [demand.requestedBy ?? '—'] : []),
            answerControls(demand),
          ]),
          { id: 'demands-table' },
        ),
  );
}
