import { describeRefusal } from './error-meanings.js';
import { api, ApiError, errorText } from './api.js';
import { checkpointSignatureHolds, inclusionHolds, leafHashOf } from './audit-check.js';
import { forgetWitnessed, rememberWitnessed, witness } from './log-witness.js';
import { badge, formatTime, h, saveCsv, statusBadge, table } from './dom.js';
import { action } from './governance-views.js';
import { labelled } from './form-controls.js';
import { checkedOutput } from './operator-views.js';
import { throttleBadge } from './consumer-views.js';
import { productDefinitionForm } from './product-definition-views.js';
import { inLanguage, jobKindName, type Phrase, t, tValue } from './i18n.js';
import { chinaDay } from '../../time/china-time.js';

/** Regulator pages: the review queue, the audit log with in-browser verification, incidents, products, reports. */
const shownRows = 50;
export async function reviewsPage(rerender: () => void): Promise<HTMLElement> {
  const { reviews } = await api<{ reviews: any[] }>('GET', '/v1/reviews');
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('reviews')));
  if (reviews.length === 0) panel.append(h('p', { class: 'muted' }, t('nothing')));
  for (const review of reviews) {
    // Empty: the reason is the reviewer's own words, kept in the audit log; a prefilled one invites approving unread.
    const reason = h('input', { class: 'reason', placeholder: t('reviewReasonHint') });
    const message = h('p', { class: 'muted' });
    const decide = async (decision: 'approve' | 'withhold') => {
      try {
        await api('POST', `/v1/reviews/${review.job.id}`, { decision, reason: reason.value });
        rerender();
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        message.textContent = errorText(error);
      }
    };
    const output = review.output as { columns: Array<{ name: string }>; rows: unknown[][] } | null;
    panel.append(
      h(
        'section',
        { class: 'card', 'data-job': review.job.id },
        h('h3', {}, review.job.purpose, ' ', badge(review.job.grade ?? '', 'warn')),
        h(
          'p',
          { class: 'muted' },
          `${review.job.id} · ${jobKindName(review.job)} · ${review.job.datasets.join(', ')} · ${formatTime(review.job.createdAt)} · `,
          h('span', { class: 'approvals' }, `${t('approvals')} ${review.approvals} / ${review.job.reviewersRequired}${review.reviewers.length ? ` (${review.reviewers.join(', ')})` : ''}`),
        ),
        h('pre', {}, review.sql),
        // What the reviewer decides on: the output as it would be released, with every suppression and its rule.
        // The first rows at once; every row on request — a reviewer approves all of what would be released.
        output ? reviewedOutput(output, review.manifest) : null,
        // An output that could not be released now (its licence, a catalogue entry or the policy changed) is withheld, not approved.
        review.releaseBlocked ? h('p', { class: 'error release-blocked' }, `${t('cannotRelease')}: ${describeRefusal(review.releaseBlocked.code, review.releaseBlocked.reason)}`) : null,
        review.canReview
          ? h('div', { class: 'actions' }, reason, review.releaseBlocked ? null : h('button', { class: 'approve', onclick: () => void decide('approve') }, t('approve')), h('button', { class: 'secondary', onclick: () => void decide('withhold') }, t('withhold')))
          : h('p', { class: 'muted' }, '—'),
        message,
      ),
    );
  }
  return panel;
}

/** A held output's first rows, and a button that shows every row (the page stays light for large outputs). */
function reviewedOutput(output: { columns: Array<{ name: string }>; rows: unknown[][] }, manifest: unknown): HTMLElement {
  const holder = h('div', {}, ...checkedOutput(output.columns, output.rows.slice(0, shownRows), manifest, { class: 'review-output' }));
  if (output.rows.length > shownRows) {
    const showAll = () => holder.replaceChildren(...checkedOutput(output.columns, output.rows, manifest, { class: 'review-output' }));
    holder.append(h('p', { class: 'muted' }, `${t('showingRows')} ${shownRows} / ${output.rows.length} `, h('button', { class: 'link-dark show-all', onclick: showAll }, t('showAllRows'))));
  }
  return holder;
}

/** Families of audit events a regulator filters by (the part of the type before the dot). */
const auditFamilies = ['licence', 'operator', 'principal', 'token', 'authz', 'job', 'review', 'budget', 'incident', 'product', 'consumer', 'catalogue', 'registration', 'dataset', 'quality', 'derived', 'open-data', 'sharing', 'channel', 'dispute', 'external', 'subject', 'platform'] as const;

type AuditEntry = { index: number; leaf: string; event: any };

/** Whether a leaf is in the tree the checkpoint signs: hashed here, and proved with the server's inclusion path. */
async function includedInLog(entry: AuditEntry, checkpoint: { tree_size: number; root_hash: string }): Promise<boolean> {
  const proof = await api('GET', `/v1/audit/proofs/inclusion?index=${entry.index}&size=${checkpoint.tree_size}`);
  const leafHash = await leafHashOf(entry.leaf);
  return leafHash === proof.leaf_hash && inclusionHolds(entry.index, checkpoint.tree_size, leafHash, proof.inclusion_path, checkpoint.root_hash);
}

/**
 * The log up to the newest signed checkpoint, newest first, 25 at a time, optionally one family of events (a
 * regulator looking for licence grants should not page through thousands of product calls). "Verify" checks the
 * checkpoint's signature and the inclusion proof of every entry shown.
 */
export async function auditPage(): Promise<HTMLElement> {
  const [checkpoint, { datasets }] = await Promise.all([api('GET', '/v1/audit/checkpoint'), api<{ datasets: Array<{ id: string; title: string; titleZh: string }> }>('GET', '/v1/datasets')]);
  const pageSize = 25;
  let entries: AuditEntry[] = [];
  let next: number | undefined;
  const results = new Map<number, HTMLElement>();
  const outcome = h('div', { id: 'audit-outcome' });
  const family = h('select', { id: 'audit-family' }, h('option', { value: '' }, t('allEvents')), ...auditFamilies.map((name) => h('option', { value: name }, t(`family_${name}`))));
  // One dataset's leaves: the events its use trail cites, its loads, quality checks and sharing, to verify together.
  const dataset = h('select', { id: 'audit-dataset' }, h('option', { value: '' }, t('allDatasets')), ...datasets.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.titleZh, entry.title)} · ${entry.id}`)));
  const rows = h('div', {});
  const older = h('button', { id: 'audit-older', class: 'secondary', onclick: () => void load(false) }, t('olderEvents'));
  const render = () => {
    rows.replaceChildren(
      table(
        ['#', t('event'), t('actor'), t('operator'), t('occurredAt'), t('inclusion')],
        entries.map((entry) => [entry.index, h('code', {}, entry.event.type), entry.event.actor, entry.event.operator ?? '—', formatTime(entry.event.at), results.get(entry.index)!]),
        { id: 'audit-table' },
      ),
    );
    older.hidden = next === undefined;
  };
  // A page asked for before the family changed again is dropped when it arrives, not mixed into the new list.
  let asked = 0;
  const load = async (fresh: boolean) => {
    const query = new URLSearchParams({ order: 'desc', limit: String(pageSize), end: String(fresh || next === undefined ? checkpoint.tree_size : next) });
    if (family.value) query.set('type', `${family.value}.*`);
    if (dataset.value) query.set('dataset', dataset.value);
    const mine = fresh ? ++asked : asked;
    const page = await api<{ entries: AuditEntry[]; next?: { end: number } }>('GET', `/v1/audit/entries?${query}`);
    if (mine !== asked) return;
    if (fresh) {
      entries = [];
      results.clear();
      outcome.replaceChildren();
    }
    for (const entry of page.entries) results.set(entry.index, h('span', { class: 'muted' }, '·'));
    entries = [...entries, ...page.entries];
    next = page.next?.end;
    render();
  };
  family.addEventListener('change', () => void load(true));
  dataset.addEventListener('change', () => void load(true));
  const verify = async () => {
    outcome.replaceChildren(t('working'));
    const signed = await checkpointSignatureHolds(checkpoint.jws, checkpoint);
    let allIncluded = true;
    for (const entry of entries) {
      const holds = await includedInLog(entry, checkpoint);
      allIncluded &&= holds;
      const mark = badge(holds ? '✓' : '✗', holds ? 'ok' : 'bad');
      results.get(entry.index)!.replaceWith(mark);
      results.set(entry.index, mark);
    }
    const witnessed = await witness(checkpoint);
    const ok = signed && allIncluded && witnessed.outcome !== 'inconsistent';
    if (ok) rememberWitnessed(checkpoint);
    outcome.replaceChildren(
      h('p', {}, badge(ok ? t('verified') : t('failed'), ok ? 'ok' : 'bad'), ` ${signed ? '✓' : '✗'} checkpoint JWS · ${entries.length} inclusion proofs (${t('signature')})`),
      h(
        'p',
        { id: 'audit-witness', class: witnessed.outcome === 'inconsistent' ? 'error' : 'muted' },
        witnessed.outcome === 'first'
          ? t('witnessFirst')
          : t(witnessed.outcome === 'consistent' ? 'witnessConsistent' : 'witnessInconsistent').replace('{size}', String(witnessed.since.tree_size)).replace('{time}', formatTime(witnessed.since.timestamp)),
      ),
      // The way out for a deployment rebuilt on purpose; a person must choose it, the page never does.
      witnessed.outcome === 'inconsistent'
        ? h('p', {}, h('button', { class: 'link', id: 'audit-forget-witness', onclick: () => (forgetWitnessed(), outcome.replaceChildren(h('p', { class: 'muted' }, t('witnessForgotten')))) }, t('witnessForget')))
        : '',
    );
  };
  await load(true);
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('audit')),
    h('p', {}, `${t('treeSize')} ${checkpoint.tree_size} · ${t('rootHash')} `, h('code', {}, checkpoint.root_hash.slice(0, 24) + '…'), ` · ${formatTime(checkpoint.timestamp)}`),
    h('label', {}, t('eventFamily')),
    family,
    h('label', { for: 'audit-dataset' }, t('dataset')),
    dataset,
    h('div', { class: 'actions' }, h('button', { id: 'verify-log', onclick: () => void verify() }, t('verifyLog'))),
    outcome,
    rows,
    h('div', { class: 'actions' }, older),
  );
}

const incidentOutcomes = ['no_action', 'operator_warned', 'licence_action', 'referred'] as const;
/** Which incidents the page lists (open ones first: what still needs a regulator) and of what kind, kept while it redraws. */
let incidentsShown: 'open' | 'resolved' | '' = 'open';
let incidentKind = '';
const incidentKinds = ['over_scope', 'probing', 'enumeration', 'differencing', 'channel_over_scope', 'channel_volume', 'sharing_overdue', 'dispute_overdue', 'sharing_evaluation_overdue'] as const;

/**
 * Incidents, open ones by default. A regulator records, on each open one, what it found and did (an outcome and
 * its reason, kept in the audit log); a resolved one shows that finding. Assessors read both and decide nothing.
 */
export async function incidentsPage(rerender: () => void, decides: boolean): Promise<HTMLElement> {
  const query = new URLSearchParams({ ...(incidentsShown ? { status: incidentsShown } : {}), ...(incidentKind ? { kind: incidentKind } : {}) }).toString();
  const { incidents } = await api<{ incidents: any[] }>('GET', `/v1/incidents${query ? `?${query}` : ''}`);
  const shown = h('select', { id: 'incidents-status' }, ...(['open', 'resolved', ''] as const).map((value) => h('option', { value, ...(value === incidentsShown ? { selected: true } : {}) }, t(value === 'open' ? 'incidentsOpen' : value === 'resolved' ? 'incidentsResolved' : 'incidentsAll'))));
  shown.addEventListener('change', () => {
    incidentsShown = shown.value as typeof incidentsShown;
    rerender();
  });
  const kind = h('select', { id: 'incidents-kind' }, h('option', { value: '' }, t('incidentsAll')), ...incidentKinds.map((value) => h('option', { value, ...(value === incidentKind ? { selected: true } : {}) }, tValue('incident', value))));
  kind.addEventListener('change', () => {
    incidentKind = kind.value;
    rerender();
  });
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('incidents')),
    h('div', { class: 'grid' }, labelled(t('status'), shown), labelled(t('kind'), kind)),
    incidents.length
      ? table(
          [t('kind'), t('operator'), t('principal'), t('detail'), t('occurredAt'), t('incidentFinding')],
          incidents.map((incident) => [
            badge(tValue('incident', incident.kind), incident.resolution ? 'info' : 'bad'),
            incident.operatorId ?? '—',
            incident.principalId ?? '—',
            incidentDetail(incident.jobId, incident.detail),
            formatTime(incident.createdAt),
            incident.resolution
              ? incidentFinding(incident.resolution, decides ? correctionForm(incident.id, rerender) : null)
              : decides
                ? resolutionForm(incident.id, rerender)
                : h('span', { class: 'muted' }, t('incidentOpen')),
          ]),
          { id: 'incidents-table' },
        )
      : h('p', { class: 'muted' }, t('nothing')),
  );
}

type Finding = { outcome: string; reason: string; resolvedBy: string; resolvedAt: string };

/** The finding in force, the findings it corrected (struck through, oldest first), and for a regulator a way to correct it. */
function incidentFinding(resolution: Finding & { earlierFindings?: Array<Finding & { correctedBy: string; correctedAt: string }> }, correction: HTMLElement | null): HTMLElement {
  const earlier = resolution.earlierFindings ?? [];
  return h(
    'div',
    { class: 'finding' },
    badge(tValue('incidentOutcome', resolution.outcome), 'ok'),
    h('p', {}, resolution.reason),
    h('small', { class: 'muted' }, `${resolution.resolvedBy} · ${formatTime(resolution.resolvedAt)}`),
    // Action on a licence is taken on the licence itself, with its own reason.
    resolution.outcome === 'licence_action' ? h('p', {}, h('a', { href: '#licences' }, t('licences'))) : null,
    earlier.length > 0
      ? h(
          'details',
          { class: 'earlier-findings' },
          h('summary', {}, t('earlierFindings').replace('{n}', String(earlier.length))),
          h(
            'ul',
            { class: 'plain' },
            ...earlier.map((finding) =>
              h(
                'li',
                {},
                h('s', {}, `${tValue('incidentOutcome', finding.outcome)}: ${finding.reason}`),
                h('br', {}),
                h('small', { class: 'muted' }, `${finding.resolvedBy} · ${formatTime(finding.resolvedAt)} — ${t('correctedBy')} ${finding.correctedBy} · ${formatTime(finding.correctedAt)}`),
              ),
            ),
          ),
        )
      : null,
    correction,
  );
}

/** An outcome and its reason, both required (the server refuses a finding without a reason, and says so here). */
function findingInputs(): { outcome: HTMLSelectElement; reason: HTMLInputElement; chosen: () => { outcome: string; reason: string } } {
  // No outcome is chosen for the regulator: a finding is a decision, and the server refuses one without it.
  const outcome = h('select', { class: 'outcome' }, h('option', { value: '' }, t('chooseOutcome')), ...incidentOutcomes.map((value) => h('option', { value }, tValue('incidentOutcome', value))));
  const reason = h('input', { class: 'reason', placeholder: t('incidentReasonHint') });
  return { outcome, reason, chosen: () => ({ outcome: outcome.value, reason: reason.value.trim() }) };
}

function resolutionForm(id: string, rerender: () => void): HTMLElement {
  const { outcome, reason, chosen } = findingInputs();
  const resolve = () => api('POST', `/v1/incidents/${encodeURIComponent(id)}/resolution`, chosen());
  return h('div', { class: 'resolution', 'data-incident': id }, outcome, reason, action(t('resolveIncident'), resolve, rerender, { class: 'resolve' }));
}

/** A finding found wrong later is replaced by one that stands; the earlier one is kept and shown struck through. */
function correctionForm(id: string, rerender: () => void): HTMLElement {
  const { outcome, reason, chosen } = findingInputs();
  reason.placeholder = t('correctionReasonHint');
  const correct = () => api('POST', `/v1/incidents/${encodeURIComponent(id)}/resolution/correction`, chosen());
  return h('details', { class: 'correction', 'data-incident': id }, h('summary', {}, t('correctFinding')), outcome, reason, action(t('correctFinding'), correct, rerender, { class: 'correct' }));
}

/** An incident's detail as a short list of its fields (ids, datasets, counts; incidents never hold data). */
function incidentDetail(jobId: string | null, detail: Record<string, unknown>): HTMLElement {
  const fields = Object.entries({ ...(jobId ? { job: jobId } : {}), ...detail });
  return h(
    'ul',
    { class: 'plain' },
    ...fields.map(([name, value]) => h('li', {}, h('small', { class: 'muted' }, `${name}: `), typeof value === 'string' ? value : Array.isArray(value) ? (value as unknown[]).join(', ') : JSON.stringify(value).slice(0, 160))),
  );
}

/**
 * Products for regulators (every product: approve or reject a draft, suspend, reinstate, retire — each with a
 * reason the audit log keeps) and for operators (their own: publish once approved, withdraw). A card shows the
 * whole definition — dataset, inputs, what identifies the subject, what is compared, the fixed condition, the
 * limits, the terms — so an approval is of what the product does, not of its title.
 */
export async function productsAdminPage(rerender: () => void, role: string, operatorId?: string): Promise<HTMLElement> {
  const { products: listed } = await api<{ products: any[] }>('GET', '/v1/products');
  // An operator's list also holds other operators' published products (the public catalogue): shown after its
  // own and without actions, which the server would refuse for a product not its own.
  const products = role === 'operator' ? listed.filter((product) => product.operator === operatorId) : listed;
  const others = role === 'operator' ? listed.filter((product) => product.operator !== operatorId) : [];
  const panel = h('div', { class: 'panel' }, h('h2', {}, t('products')), role === 'regulator' ? h('p', { class: 'muted' }, t('productReviewIntro')) : '');
  if (role === 'operator') {
    const holder = h('div', {});
    panel.append(h('div', { class: 'actions' }, h('button', { id: 'product-new', onclick: () => void productDefinitionForm(rerender).then((form) => holder.replaceChildren(form)) }, t('defineProduct'))), holder);
  }
  if (products.length === 0) panel.append(h('p', { class: 'muted' }, t('nothing')));
  for (const product of products) panel.append(productCard(product, role, rerender));
  if (others.length > 0) {
    panel.append(h('h3', { id: 'others-products' }, t('otherOperatorsProducts')));
    for (const product of others) panel.append(productCard(product, 'reader', rerender));
  }
  return panel;
}

const regulatorDecisions: Record<string, Array<'approve' | 'reject' | 'suspend' | 'reinstate' | 'retire'>> = {
  draft: ['approve', 'reject'],
  approved: ['suspend', 'retire'],
  published: ['suspend', 'retire'],
  suspended: ['reinstate', 'retire'],
};

function productCard(product: any, role: string, rerender: () => void): HTMLElement {
  const facts: Array<[string, Node | string]> =
    product.kind === 'scoring'
      ? [
          [t('productModel'), h('code', {}, `${product.model.type}: ${product.model.target} ~ ${Object.keys(product.inputSchema.properties).join(' + ')}`)],
          [t('sourceJob'), h('code', {}, product.model.job)],
          [t('datasets'), product.datasets.join(', ')],
          [t('dailyCallsPerConsumer'), String(product.dailyCallsPerConsumer)],
        ]
      : [
          [t('datasets'), h('code', {}, product.dataset)],
          [
            t('productInputs'),
            h('ul', { class: 'plain' }, ...Object.entries(product.inputSchema.properties as Record<string, any>).map(([name, input]) => h('li', {}, h('code', {}, name), ` — ${input.description}${input['x-check-character'] && !input.description.includes(input['x-check-character']) ? ` (${input['x-check-character']})` : ''}`))),
          ],
          [t('subjectInputs'), product.subjectInputs.join(', ')],
          [t('claimInputs'), product.claimInputs.length ? product.claimInputs.join(', ') : '—'],
          [
            t('productCondition'),
            product.condition
              ? h('code', { class: 'wrap' }, `${product.condition.rows ? `${t('conditionRows')} ${product.condition.rows}; ` : ''}${t('conditionRequire')} ${product.condition.require}; ≥ ${product.condition.minRows}${product.condition.recentMonths ? `; ${t('conditionRecentMonths')} ${product.condition.recentMonths}` : ''}`)
              : '—',
          ],
          [t('perSubjectDailyLimit'), String(product.perSubjectDailyLimit)],
        ];
  const price = `${t('price')}: ${product.price.industryFen} ${t('fenPerCall')} · ${t('publicInterestUse')} ${product.price.publicInterestFen}`;
  const reason = h('input', { class: 'reason', placeholder: t('reason') });
  const decide = (decision: string) => () => api('POST', `/v1/products/${encodeURIComponent(product.id)}/decision`, { decision, reason: reason.value });
  const publication = (action: 'publish' | 'withdraw') => () => api('POST', `/v1/products/${encodeURIComponent(product.id)}/publication`, { action });
  const controls =
    role === 'regulator'
      ? (regulatorDecisions[product.status] ?? []).length
        ? h('div', { class: 'actions' }, reason, ...(regulatorDecisions[product.status] ?? []).map((decision) => action(t(`decision_${decision}`), decide(decision), rerender, { class: `decide-${decision}${decision === 'approve' || decision === 'reinstate' ? '' : ' secondary'}` })))
        : ''
      : role !== 'operator'
        ? ''
        : product.status === 'approved'
        ? h('div', { class: 'actions' }, action(t('publish'), publication('publish'), rerender, { class: 'publish' }))
        : product.status === 'published'
          ? h('div', { class: 'actions' }, action(t('withdraw'), publication('withdraw'), rerender, { class: 'withdraw secondary' }))
          : '';
  return h(
    'section',
    { class: 'card', 'data-admin-product': product.id },
    h('h3', {}, `${inLanguage(product.titleZh, product.title)} · `, h('code', {}, product.id), ' ', statusBadge(product.status), ' ', badge(tValue('productKind', product.kind))),
    h('p', { class: 'muted' }, `${t('operator')} ${product.operator} · ${price} · ${product.modes.map((mode: string) => tValue('productMode', mode)).join(' / ')} · ${formatTime(product.updatedAt)}`),
    table([t('field'), ''], facts.map(([label, value]) => [label, value]), { class: 'product-definition' }),
    h('details', {}, h('summary', {}, t('terms')), h('p', {}, product.terms)),
    controls,
  );
}

export async function reportPage(): Promise<HTMLElement> {
  const year = new Date().getFullYear();
  const report = await api('GET', `/v1/reports/products?year=${year}`);
  const max = Math.max(1, ...report.products.map((row: { calls: number }) => row.calls));
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, `${t('report')} ${year}`),
    table(
      [t('products'), t('operator'), t('calls'), '', t('fees')],
      report.products.map((row: any) => [inLanguage(row.titleZh, row.title), row.operator, row.calls, h('div', { class: 'bar' }, h('div', { class: 'fill', style: `width:${((row.calls / max) * 100).toFixed(1)}%` })), row.feesFen]),
    ),
    h('p', {}, h('a', { href: '#', onclick: (event: Event) => (event.preventDefault(), void downloadCsv(year)) }, t('downloadCsv'))),
  );
}

async function downloadCsv(year: number): Promise<void> {
  saveCsv(await api<string>('GET', `/v1/reports/products?year=${year}&format=csv`), `products-${year}.csv`);
}


/**
 * Licences and operators (art. 21): regulators suspend, reinstate or revoke either with a reason, effective on the
 * next request. A suspended operator holds no licence in force, whatever its licences' own statuses.
 */
export async function licencesPage(rerender: () => void, role: string, ownOperator?: string): Promise<HTMLElement> {
  // A regulator manages every operator; a third-party assessor reads them all; an operator reads its own.
  const readsEveryOperator = role === 'regulator' || role === 'assessor';
  const [{ licences }, operators] = await Promise.all([
    api<{ licences: any[] }>('GET', '/v1/licences'),
    readsEveryOperator
      ? api<{ operators: any[] }>('GET', '/v1/operators').then((answer) => answer.operators)
      : ownOperator
        ? api<any>('GET', `/v1/operators/${encodeURIComponent(ownOperator)}`).then((operator) => [operator])
        : Promise.resolve([]),
  ]);
  const message = h('p', { class: 'error' });
  const operatorMessage = h('p', { class: 'error' });
  const actions = (path: string, item: { status: string }, shownIn: HTMLElement) => (role === 'regulator' ? standingActions(path, item.status, shownIn, rerender) : '');
  // Why a licence or an operator is suspended or revoked is for the operator to read too.
  const standing = (item: { status: string; statusReason: string | null }) => h('span', {}, statusBadge(item.status), item.statusReason && item.status !== 'active' ? h('small', { class: 'muted' }, ` ${item.statusReason}`) : '');
  return h(
    'div',
    {},
    role === 'regulator' ? await grantLicenceForm(rerender) : '',
    // An operator suspended or revoked as a whole holds no licence in force, whatever the table below says.
    ...(role === 'operator' ? operators.filter((operator) => operator.status !== 'active').map((operator) => h('div', { class: 'panel', id: 'own-operator-standing' }, h('p', {}, `${t('ownOperatorStanding')} `, standing(operator)))) : []),
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, t('licences')),
      message,
      table(
        [t('licences'), t('operator'), t('grade'), t('datasets'), t('status'), ''],
        licences.map((licence) => [
          h('span', {}, licence.title, h('br'), h('small', { class: 'muted' }, `${licence.id} · ${licence.validFrom.slice(0, 10)} – ${licence.validUntil.slice(0, 10)}`)),
          licence.operatorId,
          licence.maxGrade,
          licence.scope.map((entry: { dataset: string }) => entry.dataset).join(', '),
          standing(licence),
          actions(`/v1/licences/${encodeURIComponent(licence.id)}/status`, licence, message),
        ]),
      ),
    ),
    readsEveryOperator
      ? h(
          'div',
          { class: 'panel', id: 'operators' },
          h('h2', {}, t('operators')),
          role === 'regulator' ? h('p', { class: 'muted' }, t('operatorsIntro')) : '',
          operatorMessage,
          role === 'regulator' ? createOperatorForm(rerender) : '',
          table(
            [t('operator'), t('creditCode'), t('status'), ''],
            operators.map((operator) => [
              h('span', {}, inLanguage(operator.nameZh, operator.name), h('br'), h('small', { class: 'muted' }, operator.id)),
              operator.creditCode ?? '',
              standing(operator),
              actions(`/v1/operators/${encodeURIComponent(operator.id)}/status`, operator, operatorMessage),
            ]),
          ),
        )
      : '',
  );
}

/**
 * Creating an operator (art. 21: a legal person selected to operate), named by its unified social credit code,
 * whose check character the server verifies. A double click is one request (api.ts), and a repeated id CONFLICT.
 */
function createOperatorForm(rerender: () => void): HTMLElement {
  const id = h('input', { id: 'operator-id', placeholder: 'east-sea-analytics' });
  const nameZh = h('input', { id: 'operator-name-zh', placeholder: '东海数据分析有限公司' });
  const name = h('input', { id: 'operator-name', placeholder: 'East Sea Analytics Co., Ltd.' });
  const creditCode = h('input', { id: 'operator-credit-code', placeholder: '91310115…', maxlength: 18 });
  const message = h('p', { class: 'error' });
  const create = async () => {
    const body = { id: id.value.trim(), name: name.value.trim(), ...(nameZh.value.trim() ? { nameZh: nameZh.value.trim() } : {}), ...(creditCode.value.trim() ? { creditCode: creditCode.value.trim().toUpperCase() } : {}) };
    try {
      await api('POST', '/v1/operators', body);
      rerender();
    } catch (error) {
      message.textContent = errorText(error);
    }
  };
  return h(
    'details',
    { class: 'create-operator' },
    h('summary', {}, t('createOperator')),
    h('label', {}, 'ID'),
    id,
    h('label', {}, t('nameZh')),
    nameZh,
    h('label', {}, t('nameEn')),
    name,
    h('label', {}, t('creditCode')),
    creditCode,
    h('div', { class: 'actions' }, h('button', { id: 'create-operator', onclick: () => void create() }, t('createOperator'))),
    message,
  );
}

/** Suspend or reinstate, and revoke, with the reason the regulator writes (it goes to the audit log and the operator). */
function standingActions(path: string, status: string, message: HTMLElement, rerender: () => void): HTMLElement | string {
  if (status === 'revoked') return '';
  const reason = h('input', { class: 'reason', placeholder: t('reason') });
  const act = (next: 'active' | 'suspended' | 'revoked') => async () => {
    // No stock phrase stands in for a reason nobody wrote.
    if (!reason.value.trim()) return void (message.textContent = t('reasonRequired'));
    try {
      await api('POST', path, { status: next, reason: reason.value });
      rerender();
    } catch (error) {
      if (!(error instanceof ApiError)) throw error;
      message.textContent = errorText(error);
    }
  };
  return h(
    'div',
    { class: 'actions' },
    reason,
    status === 'active' ? h('button', { class: 'secondary', onclick: act('suspended') }, t('suspend')) : h('button', { onclick: act('active') }, t('reinstate')),
    h('button', { class: 'secondary', onclick: act('revoked') }, t('revoke')),
  );
}

/** Granting a licence (art. 21): operator, datasets in scope, highest grade, purposes, validity, fee mode. */
async function grantLicenceForm(rerender: () => void): Promise<HTMLElement> {
  const [{ operators }, { datasets }] = await Promise.all([api<{ operators: any[] }>('GET', '/v1/operators'), api<{ datasets: any[] }>('GET', '/v1/datasets')]);
  const operator = h('select', { id: 'grant-operator' }, ...operators.map((entry) => h('option', { value: entry.id }, `${inLanguage(entry.nameZh, entry.name)} (${entry.id})`)));
  const title = h('input', { id: 'grant-title', placeholder: '授权运营范围与用途' });
  const chosen = new Set<string>();
  const scope = h('div', { class: 'checks' }, ...datasets.map((dataset) => h('label', { class: 'check' }, h('input', { type: 'checkbox', value: dataset.id, onchange: (event: Event) => ((event.target as HTMLInputElement).checked ? chosen.add(dataset.id) : chosen.delete(dataset.id)) }), ` ${dataset.id} (${dataset.grade})`)));
  const grade = h('select', { id: 'grant-grade' }, ...['L1', 'L2', 'L3', 'L4', 'important'].map((value) => h('option', { value, selected: value === 'L3' }, value)));
  const industry = h('input', { type: 'checkbox', id: 'grant-industry' });
  const years = h('input', { id: 'grant-years', type: 'number', min: 1, max: 10, value: 3, style: 'max-width:120px' });
  const message = h('p', { class: 'error' });
  // One key per press, kept while that request is out: a double click sends the same grant under the same key (the
  // validity counted from the first press), so the server grants one licence instead of two.
  let pending: { form: string; key: string; body: unknown } | undefined;
  const grant = async () => {
    const form = JSON.stringify([operator.value, title.value, [...chosen], grade.value, industry.checked, years.value]);
    if (pending?.form !== form) {
      const from = new Date();
      const until = new Date(from.getTime() + Number(years.value) * 365 * 86_400_000);
      const body = {
        title: title.value,
        scope: [...chosen].map((dataset) => ({ dataset })),
        purposes: industry.checked ? ['public_interest', 'industry'] : ['public_interest'],
        maxGrade: grade.value,
        validFrom: from.toISOString(),
        validUntil: until.toISOString(),
        feeMode: industry.checked ? 'capped_fee' : 'free',
      };
      pending = { form, key: crypto.randomUUID(), body };
    }
    const { key, body } = pending;
    try {
      await api('POST', `/v1/operators/${encodeURIComponent(operator.value)}/licences`, body, { 'idempotency-key': key });
      rerender();
    } catch (error) {
      message.textContent = errorText(error);
    } finally {
      if (pending?.key === key) pending = undefined;
    }
  };
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('grantLicence')),
    h('label', {}, t('operator')),
    operator,
    h('label', {}, t('licences')),
    title,
    h('label', {}, t('datasets')),
    scope,
    h('label', {}, t('grade')),
    grade,
    h('label', { class: 'check' }, industry, ` ${t('industryUse')}`),
    h('label', {}, t('validYears')),
    years,
    h('div', { class: 'actions' }, h('button', { id: 'grant-licence', onclick: () => void grant() }, t('grantLicence'))),
    message,
  );
}

/** The supervision report's columns: the indicator each shows, and its heading. */
const supervisionShown: Array<[indicator: string, label: Phrase]> = [
  ['catalogueCompleteness', 'completeness'],
  ['datasetsWithoutFiling', 'withoutFiling'],
  ['datasetsStale', 'stale'],
  ['qualityScore', 'qualityScore'],
  ['sharingReceived', 'sharingReceived'],
  ['sharingAnsweredOnTime', 'onTime'],
  ['sharingAnsweredLate', 'late'],
  ['sharingOverdue', 'overdueNow'],
  ['refusalsWithoutLegalBasis', 'refusalsWithoutBasis'],
  ['disputesHandledOnTime', 'disputesOnTime'],
  ['disputesOverdue', 'disputesOverdue'],
  ['incidentsOnItsData', 'incidents'],
  ['externalDeliveriesOfItsData', 'exportedOutside'],
  ['openDataDemandsOnItsData', 'openDataDemands'],
];
/** Leaves listed and proved under a clicked indicator; more are left to the API, which lists every one. */
const evidenceShown = 50;

/**
 * The supervision report for a chosen period (China days, the end day included), each number a link to the audit
 * leaves it counts: clicked, they are listed and each is proved, in the browser, to be in the signed log — a
 * regulator recounts an indicator instead of trusting it.
 */
export async function supervisionPage(): Promise<HTMLElement> {
  const today = chinaDay(new Date());
  const from = h('input', { type: 'date', id: 'supervision-from', value: `${today.slice(0, 4)}-01-01`, max: today }) as HTMLInputElement;
  const to = h('input', { type: 'date', id: 'supervision-to', value: today, max: today }) as HTMLInputElement;
  const report = h('div', { id: 'supervision-report' });
  const evidence = h('div', { id: 'supervision-evidence' });
  /** The chosen days as the API's instants: from the first day's China midnight to the midnight after the last. */
  const query = (format: 'json' | 'csv') => {
    const end = new Date(`${to.value}T00:00:00+08:00`);
    end.setUTCDate(end.getUTCDate() + 1);
    return new URLSearchParams({ from: new Date(`${from.value}T00:00:00+08:00`).toISOString(), to: end.toISOString(), format, ...(format === 'json' ? { evidence: 'true' } : {}) });
  };
  const failed = (into: HTMLElement) => (error: unknown) => into.replaceChildren(h('p', { class: 'error' }, errorText(error)));
  /** Both days chosen; otherwise the report says so in place of itself. */
  const periodChosen = () => Boolean(from.value && to.value) || (report.replaceChildren(h('p', { class: 'error' }, t('periodRequired'))), false);
  const show = async () => {
    evidence.replaceChildren();
    if (!periodChosen()) return;
    const answer = await api('GET', `/v1/reports/supervision?${query('json')}`);
    report.replaceChildren(
      h('p', { class: 'muted' }, `${chinaDay(new Date(answer.from))} – ${chinaDay(new Date(new Date(answer.to).getTime() - 1))}`),
      supervisionTable(answer.institutions, (row, indicator, label) => void showEvidence(row, indicator, label).catch(failed(evidence))),
    );
  };
  const showEvidence = async (row: any, indicator: string, label: Phrase) => {
    const indexes: number[] = row.evidence[indicator];
    const heading = h('h3', {}, `${inLanguage(row.nameZh, row.name)} · ${t(label)}`);
    evidence.replaceChildren(heading, h('p', { class: 'muted' }, t('working')));
    const checkpoint = await api('GET', '/v1/audit/checkpoint');
    const signed = await checkpointSignatureHolds(checkpoint.jws, checkpoint);
    const entries = await Promise.all(indexes.slice(0, evidenceShown).map(async (index) => (await api<{ entries: AuditEntry[] }>('GET', `/v1/audit/entries?start=${index}&end=${index + 1}`)).entries[0]!));
    const proved = await Promise.all(entries.map((entry) => includedInLog(entry, checkpoint)));
    const all = signed && proved.every(Boolean);
    evidence.replaceChildren(
      heading,
      h('p', {}, badge(all ? t('verified') : t('failed'), all ? 'ok' : 'bad'), ` ${t('evidenceLeaves').replace('{n}', String(indexes.length))} · ${signed ? '✓' : '✗'} checkpoint JWS`),
      table(
        ['#', t('event'), t('actor'), t('occurredAt'), t('inclusion')],
        entries.map((entry, i) => [entry.index, h('code', {}, entry.event.type), entry.event.actor, formatTime(entry.event.at), badge(proved[i] ? '✓' : '✗', proved[i] ? 'ok' : 'bad')]),
        { id: 'evidence-table' },
      ),
      indexes.length > evidenceShown ? h('p', { class: 'muted' }, t('evidenceMore').replace('{n}', String(indexes.length - evidenceShown))) : '',
    );
  };
  const download = async () => {
    if (periodChosen()) saveCsv(await api<string>('GET', `/v1/reports/supervision?${query('csv')}`), `supervision-${from.value}-${to.value}.csv`);
  };
  await show();
  return h(
    'div',
    { class: 'panel' },
    h('h2', {}, t('supervision')),
    h(
      'div',
      { class: 'actions period' },
      h('label', { for: 'supervision-from' }, t('periodFrom')),
      from,
      h('label', { for: 'supervision-to' }, t('periodTo')),
      to,
      h('button', { id: 'supervision-show', onclick: () => void show().catch(failed(report)) }, t('showReport')),
    ),
    report,
    h('p', { class: 'muted' }, t('tracedToAudit')),
    evidence,
    h('p', {}, h('a', { href: '#', onclick: (event: Event) => (event.preventDefault(), void download().catch(failed(report))) }, t('downloadCsv'))),
  );
}

function supervisionTable(rows: any[], traced: (row: any, indicator: string, label: Phrase) => void): HTMLElement {
  // With nothing answered there is no share: an empty bar would read as none on time.
  const bar = (part: number, whole: number) =>
    whole > 0 ? h('div', { class: 'bar', title: `${Math.round((part / whole) * 100)}%` }, h('div', { class: 'fill', style: `width:${((part / whole) * 100).toFixed(1)}%` })) : '—';
  const alarming = new Set(['datasetsWithoutFiling', 'sharingOverdue', 'refusalsWithoutLegalBasis', 'disputesOverdue']);
  const shown = (row: any, indicator: string): string | HTMLElement => {
    const value = row[indicator];
    if (value === null) return '—';
    if (indicator === 'catalogueCompleteness') return `${Math.round(value * 100)}%`;
    if (indicator === 'qualityScore') return row.qualityFailing > 0 ? badge(String(value), 'bad') : String(value);
    return alarming.has(indicator) && value > 0 ? badge(String(value), 'bad') : String(value);
  };
  return table(
    [t('institution'), ...supervisionShown.flatMap(([indicator, label]) => (indicator === 'sharingAnsweredOnTime' ? [t(label), t('onTimeShare')] : [t(label)]))],
    rows.map((row) => [
      inLanguage(row.nameZh, row.name),
      ...supervisionShown.flatMap(([indicator, label]) => {
        const cell = row.evidence[indicator].length > 0 ? h('a', { href: '#', class: 'evidence', 'data-indicator': indicator, onclick: (event: Event) => (event.preventDefault(), traced(row, indicator, label)) }, shown(row, indicator)) : shown(row, indicator);
        return indicator === 'sharingAnsweredOnTime' ? [cell, bar(row.sharingAnsweredOnTime, row.sharingAnsweredOnTime + row.sharingAnsweredLate)] : [cell];
      }),
    ]),
    { id: 'supervision-table' },
  );
}

/**
 * Public-interest standing of consumers: public-interest calls are free, so regulators grant the standing with its
 * basis and end date, and revoke it with a reason (both audit leaves).
 */
export async function publicInterestPage(rerender: () => void): Promise<HTMLElement> {
  const { consumers } = await api<{ consumers: any[] }>('GET', '/v1/consumers');
  const message = h('p', { class: 'error' });
  const attempt = async (work: () => Promise<unknown>) => {
    try {
      await work();
      rerender();
    } catch (error) {
      message.textContent = errorText(error);
    }
  };
  const consumer = h('select', { id: 'pi-consumer' }, ...consumers.map((entry) => h('option', { value: entry.id }, `${entry.displayName} (${entry.id})`)));
  const basis = h('input', { id: 'pi-basis', placeholder: '委员会决定文号与公益事项' });
  const until = h('input', { id: 'pi-until', type: 'date', value: chinaDay(new Date(Date.now() + 365 * 86_400_000)) });
  const grant = () =>
    attempt(() => api('PUT', `/v1/consumers/${encodeURIComponent(consumer.value)}/public-interest`, { basis: basis.value, validUntil: new Date(`${until.value}T23:59:59+08:00`).toISOString() }));
  const standing = (entry: any) => {
    const grantNow = entry.publicInterest;
    if (!grantNow) return badge(t('none'), 'info');
    if (grantNow.inForce) return badge(t('inForce'), 'ok');
    return badge(t(grantNow.revokedAt ? 'revokedState' : 'expiredState'), 'bad');
  };
  const revoke = (entry: any) => {
    if (!entry.publicInterest?.inForce) return '';
    const reason = h('input', { class: 'reason', placeholder: t('reason') });
    return h('div', { class: 'actions' }, reason, h('button', { class: 'secondary', onclick: () => void attempt(() => api('POST', `/v1/consumers/${encodeURIComponent(entry.id)}/public-interest/revoke`, { reason: reason.value })) }, t('revoke')));
  };
  return h(
    'div',
    {},
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, t('grantPublicInterest')),
      h('label', {}, t('consumers')),
      consumer,
      h('label', {}, t('basis')),
      basis,
      h('label', {}, t('validUntil')),
      until,
      h('div', { class: 'actions' }, h('button', { id: 'pi-grant', onclick: () => void grant() }, t('grantPublicInterest'))),
      message,
    ),
    h(
      'div',
      { class: 'panel' },
      h('h2', {}, t('publicInterest')),
      table(
        [t('consumers'), t('basis'), t('validUntil'), t('status'), '', `${t('callsToday')} / ${t('dailyLimit')}`, `${t('feesThisMonth')} / ${t('monthlyCap')}`, t('quotaStanding')],
        consumers.map((entry) => [
          h('span', { 'data-consumer': entry.id }, entry.displayName, h('br'), h('small', { class: 'muted' }, entry.id)),
          entry.publicInterest?.basis ?? '',
          entry.publicInterest ? chinaDay(new Date(entry.publicInterest.validUntil)) : '',
          standing(entry),
          revoke(entry),
          `${entry.quota.callsToday} / ${entry.quota.dailyCalls}`,
          `${entry.quota.feesThisMonthFen} / ${entry.quota.monthlyCapFen}`,
          throttleBadge(entry.quota),
        ]),
      ),
    ),
  );
}
