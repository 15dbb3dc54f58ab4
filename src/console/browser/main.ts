import { api, ApiError, setToken, token } from './api.js';
import { productCataloguePage, usagePage } from './consumer-views.js';
import { h } from './dom.js';
import { currentLanguage, setLanguage, t, type Phrase } from './i18n.js';
import { analysisPage, budgetsPage, cataloguePage, jobPage, jobsPage } from './operator-views.js';
import { auditPage, incidentsPage, productsAdminPage, reportPage, reviewsPage } from './regulator-views.js';

/**
 * The web console: one page, routed by the URL hash, talking to the public API with the signed-in token. What a
 * person sees follows their role, and the server checks every call anyway (Cedar), so the menu is a courtesy,
 * not the protection.
 */
type Principal = { id: string; role: string; displayName: string; operatorId: string | null };
type Route = { hash: string; label: Phrase; render: (rerender: () => void) => Promise<HTMLElement> };

let me: Principal | undefined;

function routesFor(principal: Principal): Route[] {
  const common: Route[] = [{ hash: 'catalogue', label: 'catalogue', render: cataloguePage }];
  switch (principal.role) {
    case 'operator':
      return [
        ...common,
        { hash: 'analysis', label: 'analysis', render: analysisPage },
        { hash: 'jobs', label: 'jobs', render: jobsPage },
        { hash: 'budgets', label: 'budgets', render: budgetsPage },
        { hash: 'products', label: 'products', render: (rerender) => productsAdminPage(rerender, 'operator') },
        { hash: 'usage', label: 'usage', render: usagePage },
      ];
    case 'regulator':
      return [
        { hash: 'reviews', label: 'reviews', render: reviewsPage },
        { hash: 'audit', label: 'audit', render: auditPage },
        { hash: 'incidents', label: 'incidents', render: incidentsPage },
        { hash: 'jobs', label: 'jobs', render: jobsPage },
        { hash: 'budgets', label: 'budgets', render: budgetsPage },
        { hash: 'products', label: 'products', render: (rerender) => productsAdminPage(rerender, 'regulator') },
        { hash: 'report', label: 'report', render: reportPage },
        ...common,
      ];
    case 'consumer':
      return [
        { hash: 'products', label: 'products', render: productCataloguePage },
        { hash: 'usage', label: 'usage', render: usagePage },
      ];
    default:
      return common;
  }
}

const main = () => document.getElementById('main')!;

function header(): HTMLElement {
  const toggle = h('button', { class: 'link', id: 'language', onclick: () => (setLanguage(currentLanguage() === 'zh' ? 'en' : 'zh'), void render()) }, currentLanguage() === 'zh' ? 'English' : '中文');
  return h(
    'header',
    {},
    h('div', {}, h('h1', {}, t('title')), h('small', {}, t('motto'))),
    h('div', { class: 'who' }, me ? h('span', { id: 'who' }, `${t('signedInAs')}: ${me.displayName} (${me.role})`) : null, toggle, me ? h('button', { class: 'link', id: 'sign-out', onclick: () => (setToken(null), (me = undefined), void render()) }, t('signOut')) : null),
  );
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
      main().replaceChildren(signInPage(error instanceof ApiError ? `${error.code}: ${error.message}` : String(error)));
    }
  };
  return h('div', { class: 'panel narrow' }, h('h2', {}, t('signIn')), h('label', { for: 'token' }, t('tokenLabel')), field, h('div', { class: 'actions' }, h('button', { id: 'sign-in', onclick: () => void signIn() }, t('signIn'))), problem ? h('p', { class: 'error' }, problem) : null);
}

async function render(): Promise<void> {
  document.title = t('title');
  document.getElementById('header')!.replaceChildren(header());
  const nav = document.getElementById('nav')!;
  if (!token()) {
    nav.replaceChildren();
    main().replaceChildren(signInPage());
    return;
  }
  try {
    me ??= await api<Principal>('GET', '/v1/me');
  } catch {
    setToken(null);
    me = undefined;
    return render();
  }
  document.getElementById('header')!.replaceChildren(header());
  const routes = routesFor(me);
  const [name, argument] = location.hash.replace(/^#/, '').split('/');
  const route = routes.find((candidate) => candidate.hash === name) ?? (name === 'jobs' && argument ? undefined : routes[0]!);
  nav.replaceChildren(...routes.map((candidate) => h('a', { href: `#${candidate.hash}`, class: candidate.hash === (route?.hash ?? name) ? 'active' : '' }, t(candidate.label))));
  main().replaceChildren(h('p', { class: 'muted' }, t('loading')));
  try {
    const page = name === 'jobs' && argument ? await jobPage(argument, () => void render()) : await route!.render(() => void render());
    main().replaceChildren(page);
  } catch (error) {
    main().replaceChildren(h('div', { class: 'panel' }, h('p', { class: 'error' }, error instanceof ApiError ? `${error.code}: ${error.message}` : String(error))));
  }
}

window.addEventListener('hashchange', () => void render());
setLanguage(currentLanguage());
void render();
