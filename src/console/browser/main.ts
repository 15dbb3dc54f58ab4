import { api, ApiError, errorText, setToken, token } from './api.js';
import { productCataloguePage, usagePage } from './consumer-views.js';
import { h } from './dom.js';
import { currentLanguage, setLanguage, t, tValue, type Phrase } from './i18n.js';
import { analysisPage, budgetsPage, cataloguePage, jobPage, jobsPage } from './operator-views.js';
import { accountsPage, backupsPage } from './admin-views.js';
import { revisionsPage, revisionsWaiting } from './catalogue-revision-views.js';
import { deliveryPage, derivedPage, disputesPage, disputesWaiting, evaluationsPage, externalPage, qualityPage, sharingPage, sharingWaiting } from './governance-views.js';
import { registrationsPage, registrationsWaiting } from './registration-views.js';
import { datasetUsesPage } from './dataset-use-views.js';
import { openDataPage } from './open-data-views.js';
import { subjectAccessPage } from './subject-access-views.js';
import { auditPage, incidentsPage, licencesPage, productsAdminPage, publicInterestPage, reportPage, reviewsPage, supervisionPage } from './regulator-views.js';

/**
 * The web console: one page, routed by the URL hash, talking to the public API with the signed-in token. What a
 * person sees follows their role, and the server checks every call anyway (Cedar), so the menu is a courtesy,
 * not the protection.
 */
type Principal = { id: string; role: string; displayName: string; operatorId: string | null; institutionId: string | null };
/**
 * `waiting`: how many items wait on this page for the signed-in person (held outputs, open incidents, requests and
 * objections to answer, registrations to review or correct), shown in the menu.
 */
type Route = { hash: string; label: Phrase; render: (rerender: () => void, argument?: string) => Promise<HTMLElement>; group?: Phrase; waiting?: () => Promise<Waiting> };
/** How many wait, and how many of them are past their deadline (the count is then shown as late). */
type Waiting = number | { count: number; overdue: number };

let me: Principal | undefined;

/** Routes under a group heading in the menu, in the order given. */
const grouped = (group: Phrase, routes: Route[]): Route[] => routes.map((route) => ({ ...route, group }));

function routesFor(principal: Principal): Route[] {
  // `#catalogue/<dataset id>` opens that entry, so an entry can be linked to and kept on reload.
  const catalogue: Route = { hash: 'catalogue', label: 'catalogue', render: (_rerender, argument) => cataloguePage(principal, argument) };
  const reviewsCatalogue = principal.role === 'admin' || principal.role === 'regulator';
  const revisions: Route = { hash: 'revisions', label: 'catalogueRevisions', render: (rerender) => revisionsPage(rerender, principal), ...(reviewsCatalogue ? { waiting: () => revisionsWaiting(principal) } : {}) };
  // A body's to-do: registrations returned for correction (the data centre: submitted ones to review), sharing
  // requests to answer within art. 18's working days, objections to its data to answer (art. 13).
  const decides = principal.role === 'admin' || principal.role === 'institution';
  const registrations: Route = { hash: 'registrations', label: 'registrations', render: (rerender) => registrationsPage(rerender, principal), ...(decides ? { waiting: () => registrationsWaiting(principal) } : {}) };
  const evaluations: Route = { hash: 'evaluations', label: 'evaluations', render: (rerender) => evaluationsPage(rerender, principal) };
  const external: Route = { hash: 'external', label: 'external', render: (rerender) => externalPage(rerender, principal) };
  const derived: Route = { hash: 'derived', label: 'derived', render: (rerender) => derivedPage(rerender, principal) };
  const quality: Route = { hash: 'quality', label: 'quality', render: qualityPage };
  const uses: Route = { hash: 'uses', label: 'uses', render: () => datasetUsesPage(principal) };
  // What regulators and third-party assessors read and verify alike.
  const oversight: Route[] = [
    { hash: 'audit', label: 'audit', render: auditPage },
    {
      hash: 'incidents',
      label: 'incidents',
      render: (rerender) => incidentsPage(rerender, principal.role === 'regulator'),
      waiting: () => api<{ incidents: unknown[] }>('GET', '/v1/incidents?status=open&limit=1000').then((answer) => answer.incidents.length),
    },
    { hash: 'supervision', label: 'supervision', render: supervisionPage },
    { hash: 'report', label: 'report', render: reportPage },
  ];
  const openData: Route = { hash: 'open-data', label: 'openDataDemands', render: (rerender) => openDataPage(rerender, principal) };
  const sharing: Route = {
    hash: 'sharing',
    label: 'sharing',
    render: (rerender) => sharingPage(rerender, principal),
    ...(principal.role === 'institution' || principal.role === 'regulator' ? { waiting: () => sharingWaiting(principal) } : {}),
  };
  const disputes: Route = { hash: 'disputes', label: 'disputes', render: (rerender) => disputesPage(rerender, principal), ...(principal.role === 'institution' ? { waiting: () => disputesWaiting(principal) } : {}) };
  switch (principal.role) {
    case 'operator':
      return [
        ...grouped('groupAnalysis', [
          catalogue,
          { hash: 'analysis', label: 'analysis', render: analysisPage },
          { hash: 'jobs', label: 'jobs', render: jobsPage },
          { hash: 'budgets', label: 'budgets', render: (rerender) => budgetsPage(rerender, 'operator') },
          openData,
        ]),
        ...grouped('groupProducts', [
          { hash: 'products', label: 'products', render: (rerender) => productsAdminPage(rerender, 'operator', principal.operatorId ?? undefined) },
          { hash: 'usage', label: 'usage', render: () => usagePage(principal) },
          { hash: 'licences', label: 'licences', render: (rerender) => licencesPage(rerender, 'operator', principal.operatorId ?? undefined) },
        ]),
      ];
    case 'regulator':
      return [
        ...grouped('groupReview', [
          { hash: 'reviews', label: 'reviews', render: reviewsPage, waiting: () => api<{ jobs: unknown[] }>('GET', '/v1/jobs?status=in_review&limit=1000').then((answer) => answer.jobs.length) },
          { hash: 'jobs', label: 'jobs', render: jobsPage },
          { hash: 'budgets', label: 'budgets', render: (rerender) => budgetsPage(rerender, 'regulator') },
          { hash: 'products', label: 'products', render: (rerender) => productsAdminPage(rerender, 'regulator') },
          { hash: 'licences', label: 'licences', render: (rerender) => licencesPage(rerender, 'regulator') },
          { hash: 'public-interest', label: 'publicInterest', render: publicInterestPage },
        ]),
        ...grouped('groupGovernance', [sharing, disputes, evaluations, revisions, external, derived, openData, quality, uses, catalogue]),
        ...grouped('groupOversight', oversight),
      ];
    case 'admin':
      return [
        ...grouped('groupGovernance', [registrations, revisions, evaluations, external, derived, openData, quality, uses, catalogue]),
        ...grouped('groupPlatform', [
          { hash: 'accounts', label: 'accounts', render: (rerender) => accountsPage(rerender, principal) },
          { hash: 'backups', label: 'backups', render: backupsPage },
          { hash: 'subject-access', label: 'subjectAccessMenu', render: subjectAccessPage },
        ]),
      ];
    case 'institution':
      return [
        ...grouped('groupOwnData', [catalogue, { hash: 'delivery', label: 'delivery', render: () => deliveryPage(principal) }, quality, uses, registrations, revisions]),
        ...grouped('groupSharing', [sharing, disputes, openData]),
      ];
    case 'assessor':
      // A third-party assessor (art. 27) reads and verifies; the server refuses it every decision anyway.
      return [
        ...grouped('groupOversight', oversight),
        ...grouped('groupGovernance', [uses, { hash: 'licences', label: 'licences', render: (rerender) => licencesPage(rerender, 'assessor') }, catalogue]),
      ];
    case 'consumer':
      return [
        { hash: 'products', label: 'products', render: productCataloguePage },
        { hash: 'usage', label: 'usage', render: () => usagePage(principal) },
        openData,
      ];
    default:
      return [catalogue];
  }
}

/**
 * The menu: each group's heading before its first page, and beside a page the number of items waiting there, filled
 * in when it arrives (the menu does not wait for it; a count that cannot be read is left out).
 */
function menu(routes: Route[], active: string): Node[] {
  return routes.flatMap((candidate, index) => {
    const waiting = h('span', { class: 'waiting', 'data-waiting': candidate.hash });
    waiting.hidden = true;
    (candidate.waiting ? waitingCount(candidate.hash, candidate.waiting) : undefined)?.then(
      (answer) => {
        const { count, overdue } = typeof answer === 'number' ? { count: answer, overdue: 0 } : answer;
        waiting.textContent = String(count);
        waiting.hidden = count === 0;
        // Past a deadline (art. 18's working days, art. 13's answer): shown as late, and said so on hover.
        waiting.classList.toggle('late', overdue > 0);
        if (overdue > 0) waiting.title = t('waitingOverdue').replace('{n}', String(overdue));
      },
      () => undefined,
    );
    return [
      ...(candidate.group && candidate.group !== routes[index - 1]?.group ? [h('span', { class: 'nav-group' }, t(candidate.group))] : []),
      h('a', { href: `#${candidate.hash}`, class: candidate.hash === active ? 'active' : '' }, t(candidate.label), candidate.waiting ? waiting : null),
    ];
  });
}

/**
 * The menu's counts, each kept for a little while: moving between pages does not fetch every list the counts are
 * made of again (a count reads up to a thousand rows, and the incidents' also settles deadlines). An action on a
 * page and time drop them, so what the signed-in body just did shows at once, and what others did within the minute.
 */
const waitingCounts = new Map<string, { at: number; answer: Promise<Waiting> }>();
const waitingKeptFor = 60_000;
function waitingCount(hash: string, count: () => Promise<Waiting>): Promise<Waiting> {
  // Per account: another signed in on this page has other counts.
  const key = `${me?.id ?? ''}\u0000${hash}`;
  const kept = waitingCounts.get(key);
  if (kept && Date.now() - kept.at < waitingKeptFor) return kept.answer;
  const answer = count();
  waitingCounts.set(key, { at: Date.now(), answer });
  // A count that could not be read is asked again next time.
  answer.catch(() => waitingCounts.delete(key));
  return answer;
}
/** Renders again after an action on the page, the menu's counts read afresh; a page following a running job polls. */
const afterAction = (poll?: 'poll') => {
  if (poll !== 'poll') waitingCounts.clear();
  void render();
};

const main = () => document.getElementById('main')!;

function header(): HTMLElement {
  const toggle = h('button', { class: 'link', id: 'language', onclick: () => (setLanguage(currentLanguage() === 'zh' ? 'en' : 'zh'), void render()) }, currentLanguage() === 'zh' ? 'English' : '中文');
  return h(
    'header',
    {},
    h('div', {}, h('h1', {}, t('title')), h('small', {}, t('motto'))),
    h('div', { class: 'who' }, me ? h('span', { id: 'who' }, `${t('signedInAs')}: ${me.displayName} (${tValue('role', me.role)})`) : null, toggle, me ? h('button', { class: 'link', id: 'sign-out', onclick: () => (setToken(null), (me = undefined), void render()) }, t('signOut')) : null),
  );
}

type OidcSettings = { issuer: string; clientId: string; authorizationEndpoint: string; tokenEndpoint: string };
const base64url = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');

async function oidcSettings(): Promise<OidcSettings | undefined> {
  const response = await fetch('/console/oidc.json');
  return response.status === 200 ? ((await response.json()) as OidcSettings) : undefined;
}

/** Authorization-code flow with PKCE (RFC 7636): the verifier never leaves this tab until the token exchange. */
async function startOidcSignIn(settings: OidcSettings): Promise<void> {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))));
  sessionStorage.setItem('pds-oidc', JSON.stringify({ verifier, state }));
  const url = new URL(settings.authorizationEndpoint);
  for (const [name, value] of Object.entries({ response_type: 'code', client_id: settings.clientId, redirect_uri: `${location.origin}/console`, scope: 'openid', state, code_challenge: challenge, code_challenge_method: 'S256' })) url.searchParams.set(name, value);
  location.assign(url.toString());
}

/** Back from the identity provider with ?code&state: exchange the code for the ID token, the console's bearer. */
async function finishOidcSignIn(): Promise<string | undefined> {
  const query = new URLSearchParams(location.search);
  const code = query.get('code');
  const pending = JSON.parse(sessionStorage.getItem('pds-oidc') ?? 'null') as { verifier: string; state: string } | null;
  if (!code || !pending) return undefined;
  sessionStorage.removeItem('pds-oidc');
  history.replaceState(null, '', `${location.pathname}${location.hash}`);
  if (query.get('state') !== pending.state) return 'the sign-in response does not belong to this tab (state mismatch)';
  const settings = await oidcSettings();
  if (!settings) return 'no identity provider is configured';
  const response = await fetch(settings.tokenEndpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${location.origin}/console`, client_id: settings.clientId, code_verifier: pending.verifier }),
  });
  if (!response.ok) return `the identity provider refused the sign-in (HTTP ${response.status})`;
  const tokens = (await response.json()) as { id_token?: string };
  if (!tokens.id_token) return 'the identity provider returned no ID token';
  setToken(tokens.id_token);
  return undefined;
}

function signInPage(problem?: string): HTMLElement {
  const field = h('textarea', { id: 'token', rows: 4, placeholder: 'eyJhbGciOiJFZERTQSIs…' });
  const signIn = async () => {
    setToken(field.value.trim());
    try {
      me = await api<Principal>('GET', '/v1/me');
      location.hash = `#${routesFor(me)[0]!.hash}`;
      await render();
    } catch (error) {
      setToken(null);
      main().replaceChildren(signInPage(error instanceof ApiError ? errorText(error) : String(error)));
    }
  };
  const panel = h('div', { class: 'panel narrow' }, h('h2', {}, t('signIn')));
  const provider = h('div', { class: 'actions' });
  void oidcSettings().then((settings) => settings && provider.append(h('button', { id: 'sign-in-oidc', onclick: () => void startOidcSignIn(settings) }, t('signInOidc'))));
  panel.append(provider, h('label', { for: 'token' }, t('tokenLabel')), field, h('div', { class: 'actions' }, h('button', { id: 'sign-in', class: 'secondary', onclick: () => void signIn() }, t('signIn'))));
  if (problem) panel.append(h('p', { class: 'error' }, problem));
  return panel;
}

/**
 * Renders run concurrently (a hash change while the previous page still loads); only the latest may fill the
 * page. Without this, a slow earlier page — the default one chosen at sign-in — could land after, and over, the
 * page asked for next.
 */
let latestRender = 0;

async function render(): Promise<void> {
  const generation = ++latestRender;
  const superseded = () => generation !== latestRender;
  document.title = t('title');
  document.getElementById('header')!.replaceChildren(header());
  const nav = document.getElementById('nav')!;
  // Signed out, the page has no menu column.
  const layout = document.getElementById('layout')!;
  if (!token()) {
    layout.classList.add('bare');
    nav.replaceChildren();
    main().replaceChildren(signInPage());
    return;
  }
  try {
    me ??= await api<Principal>('GET', '/v1/me');
  } catch (error) {
    if (superseded()) return;
    // A token that no longer works (expired, account disabled, refused by the provider check): sign in again, saying why.
    setToken(null);
    me = undefined;
    layout.classList.add('bare');
    nav.replaceChildren();
    main().replaceChildren(signInPage(error instanceof ApiError ? errorText(error) : String(error)));
    return;
  }
  if (superseded()) return;
  document.getElementById('header')!.replaceChildren(header());
  const routes = routesFor(me);
  const [name, argument] = location.hash.replace(/^#/, '').split('/');
  const route = routes.find((candidate) => candidate.hash === name) ?? (name === 'jobs' && argument ? undefined : routes[0]!);
  nav.replaceChildren(...menu(routes, route?.hash ?? name ?? ''));
  layout.classList.remove('bare');
  main().replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    const page = name === 'jobs' && argument ? await jobPage(argument, afterAction, me.role === 'operator') : await route!.render(afterAction, decodedArgument(argument));
    if (!superseded()) main().replaceChildren(page);
  } catch (error) {
    if (superseded()) return;
    // An operator with no licence in force may still read its licences (policies/baseline.cedar): point it there.
    const why = error instanceof ApiError && error.code === 'LICENCE_INACTIVE' && me.role === 'operator' ? h('p', {}, h('a', { href: '#licences', id: 'why-inactive' }, t('whyLicenceInactive'))) : '';
    main().replaceChildren(h('div', { class: 'panel' }, h('p', { class: 'error' }, error instanceof ApiError ? errorText(error) : String(error)), why));
  }
}

/** The part of the address after the page's name, as written; a malformed escape is no argument rather than an error. */
function decodedArgument(argument: string | undefined): string | undefined {
  if (argument === undefined) return undefined;
  try {
    return decodeURIComponent(argument);
  } catch {
    return undefined;
  }
}

window.addEventListener('hashchange', () => void render());
setLanguage(currentLanguage());
void finishOidcSignIn().then(async (problem) => {
  await render();
  if (problem) main().replaceChildren(signInPage(problem));
});
