// The detail of one endpoint, origin, entity or property: its figures in the bucket of every
// interval containing "now", a chart over time, and its breakdowns.

import { api } from '../api.js';
import { distributionChart, seriesChart } from '../charts.js';
import { INTERVAL_NAMES, format, h, replace, table, wallTime } from '../dom.js';
import { fetchSeries } from '../series.js';
import { LISTS } from './lists.js';

const IDENTITY = {
  endpoint: ['action', 'entityType', 'entityID', 'originType', 'originID'],
  origin: ['originType', 'originID'],
  entity: ['entityType', 'entityID'],
};
const BREAKDOWNS = [
  ['actionStats', 'Actions'], ['entityTypeStats', 'Entity types'], ['deviceTypeStats', 'Device types'],
  ['userTypeStats', 'User types'], ['sessionTypeStats', 'Session types'],
];

function listOf(kind) {
  return Object.entries(LISTS).find(([, list]) => list.detail === kind);
}

function backLink(kind) {
  const [section, list] = listOf(kind);
  return h('p', {}, h('a', { href: `#/${section}` }, `◀ All ${list.title.toLowerCase()}`));
}

export async function profileDetail(ctx) {
  const { name: kind, arg: id, main } = ctx;
  const { body } = await api(`/dashboard/${kind}/${encodeURIComponent(id)}`);
  if (!ctx.current()) return {};
  const columns = [
    { field: 'interval', label: 'Interval', render: (row) => INTERVAL_NAMES[row.interval] },
    { field: 'start', label: 'Bucket', render: (row) => (row.start ? wallTime(row.start) : 'all time') },
    { field: 'total', label: 'Interactions', kind: 'count', number: true },
    { field: 'users', label: 'Users', kind: 'count', number: true },
    ...(kind === 'origin' ? [
      { field: 'entries', label: 'Entries', kind: 'count', number: true },
      { field: 'exits', label: 'Exits', kind: 'count', number: true },
      { field: 'bounceRate', label: 'Bounce rate', kind: 'rate', number: true },
    ] : []),
    { field: 'conversions.count', label: 'Conversions', kind: 'count', number: true },
    { field: 'conversions.revenue', label: 'Revenue', kind: 'number', number: true },
  ];
  const stats = Object.values(body.stats);
  const allTime = body.stats.allTime;
  const seriesHolder = h('div');
  replace(main,
    backLink(kind),
    h('h1', { tabindex: '-1' }, `${kind[0].toUpperCase()}${kind.slice(1)} ${IDENTITY[kind].map((field) => body[field]).filter(Boolean).join(' · ') || body.id}`),
    h('dl', { class: 'identity' }, ['id', ...IDENTITY[kind]].flatMap((field) => [h('dt', {}, field), h('dd', {}, body[field] || '—')])),
    h('h2', {}, 'Current buckets'),
    table(columns, stats, 'Figures by interval'),
    h('h2', {}, 'History'),
    seriesHolder,
    h('h2', {}, 'Breakdowns, all time'),
    h('div', { class: 'charts' }, BREAKDOWNS.filter(([field]) => allTime[field]).map(([field, title]) => distributionChart(title, allTime[field]).figure)),
    h('h2', {}, 'Properties, all time'),
    propertyTable(allTime.propertyStats));
  const calendar = Object.keys(body.stats).find((name) => name === 'daily') || Object.keys(body.stats).find((name) => name !== 'allTime');
  if (calendar) {
    const { labels, values } = await fetchSeries(calendar, 'total', { scope: `${kind}:${id}` });
    if (!ctx.current()) return {};
    const chart = seriesChart(`Interactions, ${INTERVAL_NAMES[calendar].toLowerCase()}`, labels, values, 'count');
    replace(seriesHolder, chart.figure);
  }
  return {};
}

function propertyTable(properties) {
  const rows = Object.entries(properties).map(([name, stats]) => ({ name, ...stats }));
  if (rows.length === 0) return h('p', { class: 'muted' }, 'No properties.');
  return table([
    { field: 'name', label: 'Property', render: (row) => h('a', { href: `#/property/${encodeURIComponent(row.name)}` }, row.name) },
    { field: 'count', label: 'Count', kind: 'count', number: true },
    { field: 'numbers.mean', label: 'Mean', number: true },
    { field: 'values.mode', label: 'Most frequent value' },
  ], rows, 'Properties');
}

export async function propertyDetail(ctx) {
  const { arg: name, main } = ctx;
  const { body } = await api(`/dashboard/properties/${encodeURIComponent(name)}`);
  if (!ctx.current()) return {};
  const intervals = Object.keys(body).filter((key) => key.endsWith('Stats')).map((key) => [key.slice(0, -5), body[key]]);
  const rows = [['allTime', body.stats], ...intervals].map(([interval, stats]) => ({ interval, ...(stats || { count: 0 }) }));
  replace(main,
    backLink('property'),
    h('h1', { tabindex: '-1' }, `Property ${body.id}`),
    h('dl', { class: 'identity' }, h('dt', {}, 'types'), h('dd', {}, body.types.join(', '))),
    h('h2', {}, 'Current buckets'),
    table([
      { field: 'interval', label: 'Interval', render: (row) => INTERVAL_NAMES[row.interval] },
      { field: 'count', label: 'Interactions carrying it', kind: 'count', number: true },
      { field: 'numbers.mean', label: 'Mean', number: true },
      { field: 'numbers.min', label: 'Min', number: true },
      { field: 'numbers.max', label: 'Max', number: true },
      { field: 'numbers.stdDev', label: 'Std. dev.', number: true },
      { field: 'values.distinct', label: 'Distinct values', kind: 'count', number: true },
    ], rows, 'Property figures by interval'),
    h('h2', {}, 'Values, all time'),
    h('div', { class: 'charts' }, distributionChart('Values', body.stats.values).figure),
    h('p', { class: 'muted' }, `${format(body.stats.numbers.count, 'count')} numeric values; strings, booleans and string arrays are counted above.`));
  return {};
}
