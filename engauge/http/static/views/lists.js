// Endpoints, origins, entities and properties: sortable, paginated tables (all-time figures).

import { api } from '../api.js';
import { focusKey, format, h, pick, replace } from '../dom.js';

const PAGE = 50;

const text = (field, label) => ({ field, label });
const link = (field, label) => ({ field, label, link: true });
const count = (field, label) => ({ field, label, kind: 'count', number: true, sortable: true });

export const LISTS = {
  endpoints: {
    title: 'Endpoints', resource: 'endpoint', detail: 'endpoint', cap: 'Up to 10,000 endpoints are named; later ones count together as “other”.',
    columns: [link('action', 'Action'), text('entityType', 'Entity type'), text('entityID', 'Entity'),
      text('originType', 'Origin type'), text('originID', 'Origin'), count('total', 'Interactions'),
      count('users', 'Users'), count('conversions.count', 'Conversions'),
      { ...count('conversions.revenue', 'Revenue'), kind: 'number' }],
  },
  origins: {
    title: 'Origins', resource: 'origin', detail: 'origin', cap: 'Up to 10,000 origins are named; later ones count together as “other”.',
    columns: [link('originID', 'Origin'), text('originType', 'Origin type'), count('total', 'Interactions'),
      count('users', 'Users'), count('entries', 'Entries'), count('exits', 'Exits'),
      { ...count('bounceRate', 'Bounce rate'), kind: 'rate' }, count('conversions.count', 'Conversions')],
  },
  entities: {
    title: 'Entities', resource: 'entity', detail: 'entity', cap: 'Up to 10,000 entities are named; later ones count together as “other”.',
    columns: [link('entityID', 'Entity'), text('entityType', 'Entity type'), count('total', 'Interactions'),
      count('users', 'Users'), count('conversions.count', 'Conversions'),
      { ...count('conversions.revenue', 'Revenue'), kind: 'number' }],
  },
  properties: {
    title: 'Properties', resource: 'properties', detail: 'property', cap: 'Up to 1,000 property names are broken down; later names are not.',
    columns: [link('name', 'Property'), { field: 'types', label: 'Types', render: (row) => row.types.join(', ') },
      count('total', 'Interactions carrying it')],
  },
};

for (const list of Object.values(LISTS)) {
  for (const column of list.columns) if (!column.number) column.sortable = column.field !== 'types';
}

export async function listView(ctx) {
  const { name, params, main, go } = ctx;
  const list = LISTS[name];
  const sort = params.get('sort') || '-total';
  const offset = Math.max(0, Number.parseInt(params.get('offset') || '0', 10) || 0);
  const holder = h('div');
  replace(main, h('h1', { tabindex: '-1' }, list.title),
    h('p', { class: 'muted' }, 'All-time figures. Choose a column heading to sort, a row to see its details by interval. ',
      list.cap),
    holder);

  async function load() {
    const { body: rows, headers } = await api(`/dashboard/${list.resource}?sort=${encodeURIComponent(sort)}&offset=${offset}&limit=${PAGE}`);
    if (!ctx.current()) return;
    const total = Number(headers.get('x-total-count') || rows.length);
    if (total === 0) {
      replace(holder, h('p', { class: 'notice', 'data-state': 'empty' },
        `No ${list.title.toLowerCase()} yet: they appear as interactions arrive.`));
      return;
    }
    if (rows.length === 0) {
      replace(holder, h('p', { class: 'notice' }, `There are only ${format(total, 'count')} rows. `,
        h('a', { href: `#/${name}?sort=${encodeURIComponent(sort)}` }, 'Go to the first page')));
      return;
    }
    const focused = holder.contains(document.activeElement) ? focusKey(document.activeElement) : null;
    replace(holder, renderTable(list, rows, sort, (next) => go(name, { sort: next })),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', 'data-page': 'previous', disabled: offset === 0, onclick: () => go(name, { sort, offset: String(Math.max(0, offset - PAGE)) }) }, '◀ Previous'),
        h('span', { 'data-range': '' }, `${offset + 1}–${Math.min(offset + rows.length, total)} of ${format(total, 'count')}`),
        h('button', { type: 'button', 'data-page': 'next', disabled: offset + PAGE >= total, onclick: () => go(name, { sort, offset: String(offset + PAGE) }) }, 'Next ▶')));
    if (focused) holder.querySelector(focused)?.focus();
  }

  await load();
  let pending = null;
  return {
    onLive() {
      pending ??= setTimeout(() => { pending = null; load().catch(ctx.warn); }, 250);
    },
    refresh: load,
    leave() { clearTimeout(pending); },
  };
}

/** A link that can always be seen and read, even for an empty identity field. */
function linkText(list, row, shown) {
  if (row.id === 'other' && list.resource !== 'properties') return 'other (beyond the cap)';
  return shown === '' ? '(empty)' : shown;
}

function renderTable(list, rows, sort, sortBy) {
  const descending = sort.startsWith('-');
  const sortField = sort.replace(/^[-+]/, '');
  const head = list.columns.map((column) => {
    const sorted = column.field === sortField;
    const attrs = { scope: 'col', class: column.number ? 'number' : null, 'aria-sort': sorted ? (descending ? 'descending' : 'ascending') : null };
    if (!column.sortable) return h('th', attrs, column.label);
    const next = sorted && descending ? column.field : `-${column.field}`;
    return h('th', attrs, h('button', { type: 'button', 'data-sort': column.field, onclick: () => sortBy(next) },
      column.label, sorted ? (descending ? ' ▼' : ' ▲') : '',
      h('span', { class: 'visually-hidden' }, sorted ? (descending ? ', sorted descending' : ', sorted ascending') : ', sort')));
  });
  const body = rows.map((row) => h('tr', { 'data-id': row.id }, list.columns.map((column) => {
    const shown = column.render ? column.render(row) : format(pick(row, column.field), column.kind);
    const content = column.link
      ? h('a', { href: `#/${list.detail}/${encodeURIComponent(row.id)}` }, linkText(list, row, shown))
      : shown;
    return h('td', { class: column.number ? 'number' : null }, content);
  })));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'visually-hidden' }, list.title),
    h('thead', {}, h('tr', {}, head)), h('tbody', {}, body)));
}
