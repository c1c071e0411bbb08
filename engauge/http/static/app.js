// The dashboard page: routes the address's #fragment to a view, keeps the login and the live
// stream, and hands stream events to the view on screen.

import { ApiFailure, logout, refresh } from './api.js';
import { destroyCharts } from './charts.js';
import { errorBox, h, replace } from './dom.js';
import { Live } from './live.js';
import { profileDetail, propertyDetail } from './views/detail.js';
import { LISTS, listView } from './views/lists.js';
import { loginView } from './views/login.js';
import { overview } from './views/overview.js';
import { settingsView } from './views/settings.js';

const FALLBACK_REFRESH_MS = 10000;

const VIEWS = {
  overview,
  settings: settingsView,
  endpoint: profileDetail,
  origin: profileDetail,
  entity: profileDetail,
  property: propertyDetail,
  ...Object.fromEntries(Object.keys(LISTS).map((name) => [name, listView])),
};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const logoutButton = document.getElementById('logout');
const live = new Live(document.getElementById('live'), () => showLogin());
let view = {};
let generation = 0;
let loggedIn = false;

function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  return { name: name || 'overview', arg: rest.length ? decodeURIComponent(rest.join('/')) : null, params: new URLSearchParams(query) };
}

/** Navigates to a view; ``params`` become the fragment's query. */
function go(name, params = {}, { replace: replaceEntry = false } = {}) {
  const query = new URLSearchParams(params).toString();
  const hash = `#/${name}${query ? `?${query}` : ''}`;
  if (hash === location.hash) {
    route();
  } else if (replaceEntry) {
    history.replaceState(null, '', hash);
    route();
  } else {
    location.hash = hash;
  }
}

function leaveView() {
  view.leave?.();
  view = {};
  destroyCharts();
}

function fail(failure) {
  if (failure instanceof ApiFailure && failure.status === 401) {
    showLogin();
    return;
  }
  console.error(failure);
  replace(main, h('h1', { tabindex: '-1' }, 'Something went wrong'),
    errorBox(failure.message || String(failure)),
    h('p', {}, h('button', { type: 'button', onclick: () => route() }, 'Try again')));
}

async function route() {
  const { name, arg, params } = parseHash();
  if (!loggedIn || name === 'login') {
    if (loggedIn) go('overview', {}, { replace: true });
    else showLogin();
    return;
  }
  const render = VIEWS[name];
  leaveView();
  const mine = ++generation;
  const section = LISTS[name] || name === 'overview' || name === 'settings' ? name
    : Object.entries(LISTS).find(([, list]) => list.detail === name)?.[0];
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (!render) {
    replace(main, h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, h('a', { href: '#/overview' }, 'Go to the overview')));
    return;
  }
  document.title = `${section ? section[0].toUpperCase() + section.slice(1) : 'Engauge'} · Engauge`;
  const ctx = { name, arg, params, main, live, go, fail, current: () => mine === generation };
  try {
    const made = await render(ctx);
    if (ctx.current()) view = made || {};
  } catch (failure) {
    if (ctx.current()) fail(failure);
  }
}

function showLogin() {
  loggedIn = false;
  leaveView();
  generation += 1;
  live.stop();
  nav.hidden = true;
  logoutButton.hidden = true;
  document.title = 'Log in · Engauge';
  if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
  loginView({ main, onLoggedIn: () => {
    signedIn();
    go('overview', {}, { replace: true });
  } });
}

function signedIn() {
  loggedIn = true;
  nav.hidden = false;
  logoutButton.hidden = false;
  live.start();
}

logoutButton.addEventListener('click', async () => {
  try {
    await logout();
  } finally {
    showLogin();
  }
});

live.subscribe((summaries) => view.onLive?.(summaries));
setInterval(() => {
  if (loggedIn && !live.up) view.refresh?.().catch(fail);
}, FALLBACK_REFRESH_MS);

window.addEventListener('hashchange', () => {
  route().then(() => main.querySelector('h1')?.focus({ preventScroll: true }));
});

(async () => {
  try {
    await refresh();
    signedIn();
    if (parseHash().name === 'login') history.replaceState(null, '', '#/overview');
  } catch (failure) {
    if (!(failure instanceof ApiFailure) || failure.status !== 401) {
      replace(main, errorBox(failure.message));
      return;
    }
  }
  if (loggedIn) route();
  else showLogin();
})();
