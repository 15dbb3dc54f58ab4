import { describeRefusal, detailText } from './error-meanings.js';
import { api, ApiError, errorText, token, upload } from './api.js';
import { badge, formatTime, h, saveCsv, statusBadge, statusTone, table } from './dom.js';
import { inLanguage, t, tValue } from './i18n.js';

/**
 * Governance pages (measures arts. 8–18): quality flags for a source, sharing requests with their channels and
 * disputes for public bodies and regulators, art. 16 evaluations, art. 19 requests and art. 14 datasets. Each action calls the public API;
 * the server decides who may do what, so a button shown to the wrong person only earns a refusal.
 */
type Me = { id: string; role: string; institutionId: string | null };

/**
 * Fetches shared data as CSV with the bearer token and lets the browser save it, named by dataset and version;
 * nothing of it is kept in the page. The URL asks for the spreadsheet form: a person opens this file in Excel.
 */
async function saveSharedCsv(url: string, dataset: string): Promise<void> {
  const response = await fetch(url, { headers: { authorization: `Bearer ${token()}` } });
  if (!response.ok) {
    const body = await response.json();
    throw new ApiError(response.status, body.error.code, body.error.message);
  }
  saveCsv(await response.blob(), `${dataset}-v${response.headers.get('pds-dataset-version')}.csv`);
}

/** A refusal the server gave: its meaning, code and reason, then each detail on a line of its own (a column, a row, a field). */
export function refusal(error: ApiError): HTMLElement[] {
  // A detail shown in Chinese keeps the server's English wording as its tooltip, to quote it exactly when asking for help.
  return [
    h('p', {}, badge(t('notAccepted'), 'bad'), ' ', describeRefusal(error.code, error.message)),
    ...error.details.map((detail) => h('p', { class: 'muted', title: `${detail.path ?? ''} ${detail.problem}`.trim() }, detailText(detail))),
  ];
}

/**
 * Sends a form's request and shows its outcome in `outcome`: "working" meanwhile, then what `shown` makes of the
 * answer, or the server's refusal with its details. Resolves with the answer, or undefined when refused.
 */
export async function sendForm<T>(outcome: HTMLElement, send: () => Promise<T>, shown: (answer: T) => Node[]): Promise<T | undefined> {
  outcome.replaceChildren(t('working'));
  try {
    const answer = await send();
    outcome.replaceChildren(...shown(answer));
    return answer;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    outcome.replaceChildren(...refusal(error));
    return undefined;
  }
}

/** Runs an action, then redraws the page, or shows the server's code and reason next to the button. */
export function action(label: string, run: () => Promise<unknown>, rerender: () => void, attributes: Record<string, string> = {}): HTMLElement {
  const message = h('span', { class: 'muted message' });
  const button = h('button', { ...attributes, onclick: () => void run().then(rerender, (error) => (message.textContent = errorText(error))) }, label);
  return h('span', {}, button, ' ', message);
}

type DeliveryTarget = {
  id: string;
  titleZh: string;
  title: string;
  institution: { id: string };
  updateFrequency: string;
  nextUpdateDue: string | null;
  updateOverdue: boolean;
  uniqueKey: string[] | null;
  columns: Array<{ name: string; type: string; class: string; nullable: boolean }>;
  versions: Array<{ versionNumber: number; rowCount: number; createdAt: string }>;
};

/**
 * What a file for one entry must hold, before it is chosen: the header line the registered columns make (in their
 * order), each column's type and whether it may be empty, the key that must be unique, and where the entry stands
 * — its last version and when the next is due. The loader refuses a file that differs; a clerk reads it here first.
 */
function deliveryExpectations(entry: DeliveryTarget): HTMLElement {
  const last = entry.versions.at(-1);
  return h(
    'div',
    { id: 'delivery-expected', class: 'card' },
    h('p', {}, `${t('expectedHeader')}:`),
    h('pre', {}, entry.columns.map((column) => column.name).join(',')),
    // The class is shown because the load checks against it: personal identifiers in a column classed attribute or
    // sensitive refuse the whole file, and the clerk should see why before sending it.
    table(
      [t('columns'), t('columnType'), t('columnClass'), t('nullable')],
      entry.columns.map((column) => [h('code', {}, column.name), column.type, tValue('class', column.class), column.nullable ? '✓' : '—']),
    ),
    h('p', { class: 'muted', id: 'delivery-class-note' }, t('deliveryClassNote')),
    entry.uniqueKey ? h('p', {}, `${t('rowKey')}: `, h('code', {}, entry.uniqueKey.join(', '))) : null,
    h(
      'p',
      { class: 'muted', id: 'delivery-standing' },
      last ? `${t('lastVersion')} v${last.versionNumber} · ${formatTime(last.createdAt)} · ${t('rows')} ${last.rowCount.toLocaleString()}` : t('noVersionYet'),
      ` · ${t('updates')}: ${tValue('frequency', entry.updateFrequency)}`,
      entry.nextUpdateDue ? ` · ${t('nextUpdateDue')} ${formatTime(entry.nextUpdateDue)}` : '',
      entry.updateOverdue ? ' ' : '',
      entry.updateOverdue ? badge(t('updateOverdue'), 'bad') : '',
    ),
  );
}

/**
 * A source's delivery of a new version (arts. 9, 11): the file goes as it is, with the encoding the clerk chose
 * (spreadsheets on Chinese Windows save GBK), and the answer is the new version with its quality score, or the
 * refusal with each column and row number at fault, never a value.
 */
export async function deliveryPage(me: Me): Promise<HTMLElement> {
  const { datasets } = await api<{ datasets: DeliveryTarget[] }>('GET', '/v1/datasets');
  const own = datasets.filter((dataset) => dataset.institution.id === me.institutionId);
  const expected = h('div', {});
  const showExpected = () => {
    const entry = own.find((candidate) => candidate.id === dataset.value);
    expected.replaceChildren(entry ? deliveryExpectations(entry) : '');
  };
  const dataset = h('select', { id: 'delivery-dataset', onchange: () => showExpected() }, ...own.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`)));
  showExpected();
  const file = h('input', { id: 'delivery-file', type: 'file', accept: '.csv,.parquet' });
  const encoding = h('select', { id: 'delivery-encoding' }, h('option', { value: 'utf-8' }, 'UTF-8'), h('option', { value: 'gb18030' }, t('encodingGb18030')));
  const outcome = h('div', { id: 'delivery-outcome', class: 'verdict' });
  const send = async () => {
    const chosen = file.files?.[0];
    if (!chosen) return void outcome.replaceChildren(h('p', { class: 'error' }, t('chooseFile')));
    const parquet = chosen.name.toLowerCase().endsWith('.parquet');
    const contentType = parquet ? 'application/vnd.apache.parquet' : `text/csv; charset=${encoding.value}`;
    await sendForm(outcome, () => upload(`/v1/datasets/${encodeURIComponent(dataset.value)}/versions`, chosen, contentType), (version) => {
      const quality = version.quality;
      return [
        h('p', {}, badge(t('delivered'), 'ok'), ` v${version.versionNumber} · ${t('rows')} ${Number(version.rowCount).toLocaleString()}`, quality ? ' · ' : '', quality ? badge(`${t('qualityScore')} ${quality.score ?? '—'}`, quality.passed ? 'ok' : 'bad') : null),
        h('p', { class: 'muted' }, h('code', {}, version.contentHash)),
      ];
    });
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('delivery')),
    h('p', { class: 'muted' }, t('deliveryExplained')),
    h('label', { for: 'delivery-dataset' }, t('dataset')),
    dataset,
    expected,
    h('label', { for: 'delivery-file' }, t('file')),
    file,
    h('label', { for: 'delivery-encoding' }, t('encoding')),
    encoding,
    h('div', { class: 'actions' }, h('button', { id: 'deliver', onclick: () => void send() }, t('deliver'))),
    outcome,
  );
}

export async function qualityPage(): Promise<HTMLElement> {
  const { flags } = await api<{ flags: any[] }>('GET', '/v1/quality-flags');
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('quality')), h('p', { class: 'muted' }, t('qualityExplained')));
  if (flags.length === 0) panel.append(h('p', { id: 'quality-clean' }, badge(t('noFlags'), 'ok')));
  for (const flag of flags) {
    panel.append(
      h(
        'section',
        { class: 'card', 'data-dataset': flag.dataset },
        h('h3', {}, `${flag.dataset} v${flag.version} `, badge(`${t('qualityScore')} ${flag.score ?? '—'}`, 'bad')),
        table(
          [t('rule'), t('status'), t('checked'), t('violations')],
          flag.rules.map((rule: any) => [h('code', {}, rule.label), statusBadge(rule.status, rule.status === 'failed' ? 'bad' : rule.status === 'passed' ? 'ok' : 'info'), rule.checked, rule.violations]),
          { class: 'quality-rules' },
        ),
        h('p', { class: 'muted' }, formatTime(flag.checkedAt)),
      ),
    );
  }
  return panel;
}

/**
 * Whether a sharing request waits on the signed-in person: its source's answer (art. 18: within 5 or 10 working
 * days), or, for a conditional one, the committee's (regulators). The page shows the decision there; the menu counts them.
 */
const sharingAwaits = (me: Me, request: any, sourceOf: Map<string, string>) =>
  request.status === 'pending' &&
  (me.role === 'institution' ? sourceOf.get(request.dataset) === me.institutionId && !request.sourceDecision : me.role === 'regulator' && request.sharingType === 'conditional' && !request.committeeDecision);

/** How many sharing requests wait on the signed-in person (the menu's count). */
export async function sharingWaiting(me: Me): Promise<{ count: number; overdue: number }> {
  const [{ requests }, { datasets }] = await Promise.all([api<{ requests: any[] }>('GET', '/v1/sharing-requests'), api<{ datasets: any[] }>('GET', '/v1/datasets')]);
  const sourceOf = new Map(datasets.map((dataset) => [dataset.id, dataset.institution.id]));
  const awaiting = requests.filter((request) => sharingAwaits(me, request, sourceOf));
  return { count: awaiting.length, overdue: awaiting.filter((request) => request.overdue).length };
}

/** Whether a dispute waits on the signed-in body: an open objection to its own data (art. 13), which it answers. */
const disputeAwaits = (me: Me, dispute: any) => dispute.status === 'open' && me.role === 'institution' && dispute.raiser !== me.institutionId;

/** How many disputes wait for the signed-in body's answer (the menu's count). */
export async function disputesWaiting(me: Me): Promise<{ count: number; overdue: number }> {
  const { disputes } = await api<{ disputes: any[] }>('GET', '/v1/disputes');
  const awaiting = disputes.filter((dispute) => disputeAwaits(me, dispute));
  return { count: awaiting.length, overdue: awaiting.filter((dispute) => dispute.overdue).length };
}

export async function sharingPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const [{ requests }, { channels }, { datasets }] = await Promise.all([
    api<{ requests: any[] }>('GET', '/v1/sharing-requests'),
    api<{ channels: any[] }>('GET', '/v1/channels'),
    api<{ datasets: any[] }>('GET', '/v1/datasets'),
  ]);
  const sourceOf = new Map(datasets.map((dataset) => [dataset.id, dataset.institution.id]));
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('sharing')));

  if (me.role === 'institution') {
    const others = datasets.filter((dataset) => dataset.institution.id !== me.institutionId && dataset.sharingType !== 'none');
    const dataset = h('select', { id: 'share-dataset' }, ...others.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} (${entry.id}, ${tValue('sharing', entry.sharingType)})`)));
    const columns = h('input', { id: 'share-columns', placeholder: t('columnsOptional') });
    const duty = h('input', { id: 'share-duty', placeholder: t('duty') });
    const scenario = h('input', { id: 'share-scenario', placeholder: t('scenario') });
    const request = () =>
      api('POST', '/v1/sharing-requests', {
        dataset: dataset.value,
        duty: duty.value,
        scenario: scenario.value,
        ...(columns.value.trim() ? { columns: columns.value.split(',').map((name) => name.trim()).filter(Boolean) } : {}),
      });
    panel.append(h('section', { class: 'card' }, h('h3', {}, t('newRequest')), h('div', { class: 'form' }, dataset, columns, duty, scenario, action(t('send'), request, rerender, { id: 'share-submit' }))));
  }

  const decisionControls = (request: any) => {
    if (!sharingAwaits(me, request, sourceOf)) return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    const basis = h('input', { class: 'basis', placeholder: t('legalBasis') });
    return h(
      'span',
      {},
      action(t('approve'), () => api('POST', `/v1/sharing-requests/${request.id}/decision`, { decision: 'approve' }), rerender, { class: 'approve' }),
      reason,
      basis,
      action(t('refuse'), () => api('POST', `/v1/sharing-requests/${request.id}/decision`, { decision: 'refuse', reason: reason.value || undefined, legalBasis: basis.value || undefined }), rerender, { class: 'secondary refuse' }),
    );
  };
  panel.append(
    h('h3', {}, t('requests')),
    requests.length
      ? table(
          [t('dataset'), t('requester'), t('kind'), t('status'), t('dueOn'), ''],
          requests.map((request) => [
            request.dataset,
            request.requester,
            request.sharingType,
            h('span', {}, statusBadge(request.status, statusTone(request.status === 'approved' ? 'active' : request.status === 'refused' ? 'rejected' : 'in_review')), request.overdue ? badge(t('overdueNow'), 'bad') : ''),
            request.dueOn + (request.deadlineProvisional ? ' *' : ''),
            decisionControls(request),
          ]),
          { id: 'sharing-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );

  const pull = (channel: any) => saveSharedCsv(`/v1/channels/${channel.id}/data?spreadsheet=true`, channel.dataset);
  // The regulator writes why the channel may run again (it goes to the audit log); no stock phrase stands in for it.
  const manage = (channel: any) => {
    if (me.role !== 'regulator' || (channel.status !== 'frozen' && channel.status !== 'suspended')) return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    const message = h('span', { class: 'muted message' });
    const reactivate = async () => {
      if (!reason.value.trim()) return void (message.textContent = t('reasonRequired'));
      try {
        await api('POST', `/v1/channels/${channel.id}/status`, { action: 'reactivate', reason: reason.value });
        rerender();
      } catch (error) {
        message.textContent = errorText(error);
      }
    };
    return h('span', {}, reason, ' ', h('button', { class: 'reactivate', onclick: () => void reactivate() }, t('reactivate')), ' ', message);
  };
  panel.append(
    h('h3', {}, t('channels')),
    channels.length
      ? table(
          [t('dataset'), t('requester'), t('columns'), t('status'), t('freezesOn'), ''],
          channels.map((channel) => [
            channel.dataset,
            channel.institution,
            h('code', {}, channel.columns.join(', ')),
            statusBadge(channel.status, channel.status === 'open' ? 'ok' : channel.status === 'frozen' ? 'warn' : 'bad'),
            channel.freezesOn ?? '—',
            me.role === 'institution' && channel.institution === me.institutionId && channel.status === 'open' ? action(t('pull'), () => pull(channel), () => {}, { class: 'pull' }) : manage(channel),
          ]),
          { id: 'channels-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
  return panel;
}

export async function disputesPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const [{ disputes }, channels] = await Promise.all([
    api<{ disputes: any[] }>('GET', '/v1/disputes'),
    me.role === 'institution' ? api<{ channels: any[] }>('GET', '/v1/channels').then((body) => body.channels.filter((channel) => channel.institution === me.institutionId)) : Promise.resolve([]),
  ]);
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('disputes')));
  if (channels.length > 0) {
    const dataset = h('select', { id: 'dispute-dataset' }, ...[...new Set(channels.map((channel) => channel.dataset))].map((id) => h('option', { value: id }, id)));
    const column = h('input', { id: 'dispute-column', placeholder: t('columnOptional') });
    const description = h('input', { id: 'dispute-description', placeholder: t('description') });
    const raise = () => api('POST', '/v1/disputes', { dataset: dataset.value, description: description.value, ...(column.value.trim() ? { column: column.value.trim() } : {}) });
    panel.append(h('section', { class: 'card' }, h('h3', {}, t('raiseDispute')), h('div', { class: 'form' }, dataset, column, description, action(t('send'), raise, rerender, { id: 'dispute-submit' }))));
  } else if (me.role === 'institution') {
    // Art. 13: a body objects to data it obtained through the platform; without a channel there is nothing to object to yet.
    panel.append(h('p', { class: 'muted', id: 'dispute-needs-channel' }, t('disputeNeedsChannel')));
  }
  const answerControls = (dispute: any) => {
    if (!disputeAwaits(me, dispute)) return dispute.answer ?? '';
    const answer = h('input', { class: 'answer', placeholder: t('answer') });
    const version = h('input', { class: 'version', type: 'number', min: 1, placeholder: t('correctedVersion') });
    return h(
      'span',
      {},
      answer,
      version,
      action(t('corrected'), () => api('POST', `/v1/disputes/${dispute.id}/answer`, { outcome: 'corrected', version: Number(version.value), answer: answer.value }), rerender),
      action(t('rejectDispute'), () => api('POST', `/v1/disputes/${dispute.id}/answer`, { outcome: 'rejected', answer: answer.value }), rerender, { class: 'secondary' }),
    );
  };
  panel.append(
    disputes.length
      ? table(
          [t('dataset'), t('raiser'), t('description'), t('status'), t('dueOn'), ''],
          disputes.map((dispute) => [
            dispute.dataset + (dispute.column ? `.${dispute.column}` : ''),
            dispute.raiser,
            dispute.description,
            h('span', {}, statusBadge(dispute.status, dispute.status === 'open' ? 'warn' : 'ok', 'disputeStatus'), dispute.overdue ? badge(t('overdueNow'), 'bad') : ''),
            dispute.dueOn,
            answerControls(dispute),
          ]),
          { id: 'disputes-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
  return panel;
}

/**
 * Art. 16's periodic evaluation of conditionally shared data: what is due and overdue for regulators and the data
 * centre; the data centre keeps a dataset conditional (with its basis) or converts it. A conversion is a catalogue
 * revision, published by another reviewer, so the dataset stays listed until then.
 */
export async function evaluationsPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const { datasets } = await api<{ datasets: any[] }>('GET', '/v1/sharing-evaluations');
  const controls = (entry: any) => {
    if (me.role !== 'admin') return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    const evaluate = (outcome: string) => () => api('POST', `/v1/datasets/${encodeURIComponent(entry.dataset)}/sharing-evaluations`, { outcome, reason: reason.value });
    return h('span', {}, reason, action(t('keepConditional'), evaluate('keep_conditional'), rerender, { class: 'keep' }), action(t('convertUnconditional'), evaluate('convert_unconditional'), rerender, { class: 'convert secondary' }));
  };
  const last = (entry: any) =>
    entry.lastEvaluation
      ? h(
          'span',
          {},
          `${tValue('outcome', entry.lastEvaluation.outcome)}${entry.lastEvaluation.revision ? ` · r${entry.lastEvaluation.revision}` : ''} · ${formatTime(entry.lastEvaluation.evaluatedAt)}`,
          h('br'),
          h('small', { class: 'muted' }, entry.lastEvaluation.reason),
        )
      : '';
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('evaluations')),
    h('p', { class: 'muted' }, t('evaluationsIntro')),
    datasets.length
      ? table(
          [t('dataset'), t('institution'), t('basis'), t('evaluationDue'), t('lastEvaluation'), ''],
          datasets.map((entry) => [
            h('span', { 'data-dataset': entry.dataset }, inLanguage(entry.titleZh, entry.title), h('br'), h('small', { class: 'muted' }, entry.dataset)),
            entry.institution,
            entry.sharingBasis ?? '',
            h('span', {}, entry.dueOn, ' ', entry.overdue ? badge(t('overdueNow'), 'bad') : ''),
            last(entry),
            controls(entry),
          ]),
          { id: 'evaluations-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
}

/**
 * Art. 19's requests from government units outside Lingang: regulators file what the committee received and a
 * second regulator reviews it; the data centre exports each dataset of an approved request for the city platform.
 */
export async function externalPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const [{ requests }, { datasets }] = await Promise.all([api<{ requests: any[] }>('GET', '/v1/external-requests'), api<{ datasets: any[] }>('GET', '/v1/datasets')]);
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('external')), h('p', { class: 'muted' }, t('externalIntro')));
  if (me.role === 'regulator') {
    const requester = h('input', { id: 'ext-requester', placeholder: t('requesterUnit') });
    const scenario = h('input', { id: 'ext-scenario', placeholder: t('scenario') });
    const dataset = h('select', { id: 'ext-dataset' }, ...datasets.filter((entry) => entry.sharingType !== 'none' && entry.grade !== 'core').map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} (${entry.id})`)));
    const columns = h('input', { id: 'ext-columns', placeholder: t('columns') });
    const safeguards = h('input', { id: 'ext-safeguards', placeholder: t('safeguards') });
    const file = () =>
      api('POST', '/v1/external-requests', {
        requester: requester.value,
        scenario: scenario.value,
        items: [{ dataset: dataset.value, columns: columns.value.split(',').map((name) => name.trim()).filter(Boolean) }],
        safeguards: safeguards.value,
      });
    panel.append(h('section', { class: 'card' }, h('h3', {}, t('fileExternal')), h('div', { class: 'form' }, requester, scenario, dataset, columns, safeguards, action(t('send'), file, rerender, { id: 'ext-submit' }))));
  }
  const controls = (request: any) => {
    if (me.role === 'regulator' && request.status === 'pending' && request.recordedBy !== me.id) {
      const reason = h('input', { class: 'reason', placeholder: t('reason') });
      return h(
        'span',
        {},
        action(t('approveExternal'), () => api('POST', `/v1/external-requests/${request.id}/decision`, { decision: 'approve' }), rerender, { class: 'approve' }),
        reason,
        action(t('refuseExternal'), () => api('POST', `/v1/external-requests/${request.id}/decision`, { decision: 'refuse', reason: reason.value || undefined }), rerender, { class: 'secondary refuse' }),
      );
    }
    if (me.role === 'admin' && (request.status === 'approved' || request.status === 'delivered')) {
      return h('span', {}, ...request.items.map((item: any) => action(`${t('exportForCity')} · ${item.dataset}`, () => saveSharedCsv(`/v1/external-requests/${request.id}/data?dataset=${encodeURIComponent(item.dataset)}&spreadsheet=true`, item.dataset), rerender, { class: 'export' })));
    }
    return '';
  };
  panel.append(
    requests.length
      ? table(
          [t('requesterUnit'), t('scenario'), t('dataList'), t('safeguards'), t('status'), t('deliveries'), ''],
          requests.map((request) => [
            request.requester,
            request.scenario,
            h('code', {}, request.items.map((item: any) => `${item.dataset}: ${item.columns.join(', ')}`).join('; ')),
            request.safeguards,
            h('span', {}, statusBadge(request.status, statusTone(request.status === 'pending' ? 'in_review' : request.status === 'refused' ? 'rejected' : 'active')), request.decisionReason ? h('small', { class: 'muted' }, ` ${request.decisionReason}`) : ''),
            request.deliveries.map((delivery: any) => `${delivery.dataset} v${delivery.version} · ${delivery.rows} · ${formatTime(delivery.at)}`).join('; '),
            controls(request),
          ]),
          { id: 'external-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
  return panel;
}

/**
 * Art. 14's high-quality datasets from released outputs: the data centre proposes one from a released aggregate
 * job; a regulator publishes it as open L1 data or rejects it with a reason.
 */
export async function derivedPage(rerender: () => void, me: Me): Promise<HTMLElement> {
  const { proposals } = await api<{ proposals: any[] }>('GET', '/v1/derived-datasets');
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('derived')), h('p', { class: 'muted' }, t('derivedIntro')));
  if (me.role === 'admin') {
    const job = h('input', { id: 'der-job', placeholder: t('releasedJob') });
    const id = h('input', { id: 'der-id', placeholder: t('datasetId') });
    const titleZh = h('input', { id: 'der-title-zh', placeholder: t('titleZh') });
    const title = h('input', { id: 'der-title', placeholder: t('titleEn') });
    const description = h('input', { id: 'der-description', placeholder: t('description') });
    const descriptionZh = h('input', { id: 'der-description-zh', placeholder: t('descriptionZh') });
    const category = h('input', { id: 'der-category', placeholder: t('category') });
    const propose = () =>
      api('POST', '/v1/derived-datasets', {
        job: job.value.trim(),
        id: id.value.trim(),
        title: title.value,
        titleZh: titleZh.value,
        description: description.value,
        ...(descriptionZh.value.trim() ? { descriptionZh: descriptionZh.value } : {}),
        category: category.value,
      });
    panel.append(h('section', { class: 'card' }, h('h3', {}, t('proposeDerived')), h('div', { class: 'form' }, job, id, titleZh, title, description, descriptionZh, category, action(t('send'), propose, rerender, { id: 'der-submit' }))));
  }
  const controls = (proposal: any) => {
    if (me.role !== 'regulator' || proposal.status !== 'proposed') return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    return h(
      'span',
      {},
      action(t('publishDerived'), () => api('POST', `/v1/derived-datasets/${proposal.id}/decision`, { decision: 'publish' }), rerender, { class: 'publish' }),
      reason,
      action(t('rejectDerived'), () => api('POST', `/v1/derived-datasets/${proposal.id}/decision`, { decision: 'reject', reason: reason.value || undefined }), rerender, { class: 'secondary reject' }),
    );
  };
  panel.append(
    proposals.length
      ? table(
          [t('dataset'), t('releasedJob'), t('description'), t('status'), ''],
          proposals.map((proposal) => [
            h('span', { 'data-derived': proposal.dataset }, inLanguage(proposal.titleZh, proposal.title), h('br'), h('small', { class: 'muted' }, proposal.dataset)),
            h('code', {}, proposal.job),
            inLanguage(proposal.descriptionZh, proposal.description),
            h('span', {}, statusBadge(proposal.status, statusTone(proposal.status === 'proposed' ? 'in_review' : proposal.status === 'rejected' ? 'rejected' : 'active')), proposal.decisionReason ? h('small', { class: 'muted' }, ` ${proposal.decisionReason}`) : ''),
            controls(proposal),
          ]),
          { id: 'derived-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
  return panel;
}
