// Endpoints, origins, entities and properties: sortable, paginated tables (all-time figures).

import { api } from '../api.js';
import { format, h, pick, replace } from '../dom.js';

const PAGE = 50;

const text = (field, label) => ({ field, label });
const count = (field, label) => ({ field, label, kind: 'count', number: true, sortable: true });

export const LISTS = {
  endpoints: {
    title: 'Endpoints', resource: 'endpoint', detail: 'endpoint',
    columns: [text('action', 'Action'), text('entityType', 'Entity type'), text('entityID', 'Entity'),
      text('originType', 'Origin type'), text('originID', 'Origin'), count('total', 'Interactions'),
      count('users', 'Users'), count('conversions.count', 'Conversions'),
      { ...count('conversions.revenue', 'Revenue'), kind: 'number' }],
  },
  origins: {
    title: 'Origins', resource: 'origin', detail: 'origin',
    columns: [text('originType', 'Origin type'), text('originID', 'Origin'), count('total', 'Interactions'),
      count('users', 'Users'), count('entries', 'Entries'), count('exits', 'Exits'),
      { ...count('bounceRate', 'Bounce rate'), kind: 'rate' }, count('conversions.count', 'Conversions')],
  },
  entities: {
    title: 'Entities', resource: 'entity', detail: 'entity',
    columns: [text('entityType', 'Entity type'), text('entityID', 'Entity'), count('total', 'Interactions'),
      count('users', 'Users'), count('conversions.count', 'Conversions'),
      { ...count('conversions.revenue', 'Revenue'), kind: 'number' }],
  },
  properties: {
    title: 'Properties', resource: 'properties', detail: 'property',
    columns: [text('name', 'Property'), { field: 'types', label: 'Types', render: (row) => row.types.join(', ') },
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
    h('p', { class: 'muted' }, 'All-time figures. Choose a column heading to sort, a row to see its details by interval.'),
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
    replace(holder, renderTable(list, rows, sort, (next) => go(name, { sort: next })),
      h('nav', { class: 'pager', 'aria-label': 'Pages' },
        h('button', { type: 'button', disabled: offset === 0, onclick: () => go(name, { sort, offset: String(Math.max(0, offset - PAGE)) }) }, '◀ Previous'),
        h('span', { 'data-range': '' }, `${offset + 1}–${Math.min(offset + rows.length, total)} of ${format(total, 'count')}`),
        h('button', { type: 'button', disabled: offset + PAGE >= total, onclick: () => go(name, { sort, offset: String(offset + PAGE) }) }, 'Next ▶')));
  }

  await load();
  let pending = null;
  return {
    onLive() {
      pending ??= setTimeout(() => { pending = null; load().catch(ctx.fail); }, 250);
    },
    refresh: load,
    leave() { clearTimeout(pending); },
  };
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
  const body = rows.map((row) => h('tr', { 'data-id': row.id }, list.columns.map((column, index) => {
    const shown = column.render ? column.render(row) : format(pick(row, column.field), column.kind);
    const content = index === 0
      ? h('a', { href: `#/${list.detail}/${encodeURIComponent(row.id)}` }, row.id === 'other' ? 'other (beyond the cap)' : shown)
      : shown;
    return h('td', { class: column.number ? 'number' : null }, content);
  })));
  return h('div', { class: 'table-wrap' }, h('table', {}, h('caption', { class: 'visually-hidden' }, list.title),
    h('thead', {}, h('tr', {}, head)), h('tbody', {}, body)));
}
