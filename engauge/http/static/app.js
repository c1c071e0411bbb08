// The dashboard page: routes the address's #fragment to a view, keeps the login and the live
// stream, and hands stream events to the view on screen.

import { ApiFailure, logout, refresh, session } from './api.js';
import { destroyCharts } from './charts.js';
import { errorBox, focusKey, h, replace } from './dom.js';
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
const notice = document.getElementById('notice');
const logoutButton = document.getElementById('logout');
const live = new Live(document.getElementById('live'), () => showLogin(), () => route());
let view = {};
let generation = 0;
let loggedIn = false;
let returnTo = null;
let refocus = null;
let firstView = true;

function parseHash() {
  const [path, query = ''] = location.hash.replace(/^#\/?/, '').split('?');
  const [name, ...rest] = path.split('/');
  return { name: name || 'overview', arg: rest.length ? decodeURIComponent(rest.join('/')) : null, params: new URLSearchParams(query) };
}

/** Navigates to a view; ``params`` become the fragment's query. The focused control keeps focus. */
function go(name, params = {}, { replace: replaceEntry = false } = {}) {
  const query = new URLSearchParams(params).toString();
  const hash = `#/${name}${query ? `?${query}` : ''}`;
  refocus = focusKey(document.activeElement);
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

/** A view could not be drawn: say why in its place. */
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

/** A background refresh failed: the view stays, a notice says so until the next success. */
function warn(failure) {
  if (failure instanceof ApiFailure && failure.status === 401) {
    showLogin();
    return;
  }
  replace(notice, errorBox(`Could not refresh: ${failure.message}. The numbers shown may be out of date.`));
}

function markSection(name) {
  const section = LISTS[name] || name === 'overview' || name === 'settings' ? name
    : Object.entries(LISTS).find(([, list]) => list.detail === name)?.[0];
  for (const link of nav.querySelectorAll('a')) {
    if (link.dataset.section === section) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${section ? section[0].toUpperCase() + section.slice(1) : 'Engauge'} · Engauge`;
}

async function route() {
  if (!loggedIn) {
    showLogin();
    return;
  }
  leaveView();
  replace(notice);
  const mine = ++generation;
  const focus = refocus;
  refocus = null;
  let parsed;
  try {
    parsed = parseHash();
  } catch {
    parsed = { name: 'not-found' };
  }
  const { name, arg, params } = parsed;
  if (name === 'login') {
    go('overview', {}, { replace: true });
    return;
  }
  markSection(name);
  const render = VIEWS[name];
  if (!render) {
    replace(main, h('h1', { tabindex: '-1' }, 'Not found'), h('p', {}, h('a', { href: '#/overview' }, 'Go to the overview')));
    return;
  }
  const ctx = { name, arg, params, main, live, go, fail, warn, current: () => mine === generation };
  try {
    const made = await render(ctx);
    if (!ctx.current()) return;
    view = made || {};
    // Moving within the page takes focus along; the first view of a fresh load leaves it be.
    if (focus || !firstView) {
      const target = (focus && main.querySelector(focus)) || main.querySelector('h1');
      target?.focus({ preventScroll: Boolean(focus) });
    }
    firstView = false;
  } catch (failure) {
    if (ctx.current()) fail(failure);
  }
}

function showLogin(message) {
  if (loggedIn || returnTo === null) {
    const hash = location.hash;
    returnTo = hash && !hash.startsWith('#/login') ? hash : '#/overview';
  }
  loggedIn = false;
  leaveView();
  generation += 1;
  live.stop();
  nav.hidden = true;
  logoutButton.hidden = true;
  replace(notice);
  document.title = 'Log in · Engauge';
  if (location.hash !== '#/login') history.replaceState(null, '', '#/login');
  loginView({ main, message, onLoggedIn: () => {
    signedIn();
    history.replaceState(null, '', returnTo || '#/overview');
    returnTo = null;
    firstView = false; // focus follows the login to the view it opens
    route();
  } });
}

function signedIn() {
  loggedIn = true;
  nav.hidden = false;
  logoutButton.hidden = false;
  live.start();
}

session.onLoggedOut = () => showLogin();

logoutButton.addEventListener('click', async () => {
  let message = null;
  try {
    await logout();
  } catch (failure) {
    message = `Logging out did not reach the server (${failure.message}); the login cookie stays valid until it expires.`;
  }
  returnTo = '#/overview';
  loggedIn = false;
  showLogin(message);
});

document.querySelector('.skip-link').addEventListener('click', (event) => {
  event.preventDefault();
  main.focus();
});

live.subscribe((summaries) => view.onLive?.(summaries));
setInterval(() => {
  if (loggedIn && !live.up) view.refresh?.().catch(warn);
}, FALLBACK_REFRESH_MS);

window.addEventListener('hashchange', () => route());

(async () => {
  try {
    await refresh();
    signedIn();
  } catch (failure) {
    if (!(failure instanceof ApiFailure) || failure.status !== 401) {
      replace(main, errorBox(failure.message));
      return;
    }
  }
  if (loggedIn) {
    if (parseHash().name === 'login') history.replaceState(null, '', '#/overview');
    route();
  } else {
    showLogin();
  }
})();
