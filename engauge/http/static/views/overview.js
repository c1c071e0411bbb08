// Overview: the figures of one bucket of the chosen interval, a chart of any figure over the
// interval's history, and the distributions. The current bucket follows the live stream.

import { api } from '../api.js';
import { distributionChart, seriesChart } from '../charts.js';
import { INTERVAL_NAMES, errorBox, format, h, pick, replace, wallTime, zoneOf } from '../dom.js';
import { fetchSeries } from '../series.js';

export const METRICS = [
  ['total', 'Interactions', 'count'],
  ['users', 'Users', 'count'],
  ['sessions.started', 'Sessions', 'count'],
  ['sessions.bounceRate', 'Bounce rate', 'rate'],
  ['sessions.conversionRate', 'Conversion rate', 'rate'],
  ['conversions.count', 'Conversions', 'count'],
  ['conversions.revenue', 'Revenue', 'number'],
  ['sessions.duration.mean', 'Average session duration', 'duration'],
  ['sessions.interactions.mean', 'Interactions per session', 'number'],
  ['unitMetrics.revenuePerUser', 'Revenue per user', 'number'],
  ['unitMetrics.revenuePerSession', 'Revenue per session', 'number'],
  ['unitMetrics.revenuePerConversion', 'Revenue per conversion', 'number'],
  ['unitMetrics.conversionsPerUser', 'Conversions per user', 'number'],
];

const DISTRIBUTIONS = [
  ['actionStats', 'Actions'],
  ['originTypeStats', 'Origin types'],
  ['entityTypeStats', 'Entity types'],
  ['deviceTypeStats', 'Device types'],
  ['userTypeStats', 'User types'],
  ['sessionTypeStats', 'Session types'],
];

const SERIES_FOR_ALL_TIME = 'daily';
const REFETCH_DELAY_MS = 250;
const ROLLOVER_GRACE_MS = 1000;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Where an "earlier"/"later" step lands: one second before this bucket, or its end. */
function earlier(summary) {
  return new Date(Date.parse(summary.start) - 1000).toISOString();
}

export async function overview(ctx) {
  const { params, main, live, go } = ctx;
  const { body: current } = await api('/dashboard/summaries');
  const enabled = current.map((bucket) => bucket.interval);
  const stored = localStorage.getItem('engauge.interval');
  const fallback = enabled.includes('daily') ? 'daily' : 'allTime';
  const interval = enabled.includes(params.get('interval')) ? params.get('interval')
    : enabled.includes(stored) ? stored : fallback;
  localStorage.setItem('engauge.interval', interval);
  const at = interval === 'allTime' ? null : params.get('at');
  const metric = METRICS.some(([path]) => path === params.get('metric')) ? params.get('metric') : 'total';
  const query = (changes) => {
    const next = { interval, at, metric, ...changes };
    return Object.fromEntries(Object.entries(next).filter(([, value]) => value));
  };

  let summary = await fetchSummary(interval, at);
  if (!ctx.current()) return {};
  const isLive = () => !at;

  const cards = new Map();
  const cardGrid = h('div', { class: 'cards', role: 'group', 'aria-label': 'Figures of this bucket; choose one to chart it' },
    METRICS.map(([path, label, kind]) => {
      const value = h('span', { class: 'card-value' }, format(pick(summary, path), kind));
      cards.set(path, { value, kind });
      return h('button', {
        type: 'button', class: 'card', 'data-metric': path, 'aria-pressed': String(path === metric),
        onclick: () => go('overview', query({ metric: path })),
      }, h('span', { class: 'card-label' }, label), value);
    }));

  const seriesInterval = interval === 'allTime'
    ? (enabled.includes(SERIES_FOR_ALL_TIME) ? SERIES_FOR_ALL_TIME : enabled.find((name) => name !== 'allTime'))
    : interval;
  const seriesHolder = h('div');
  const distributions = h('div', { class: 'charts' });
  const emptyState = h('div');

  replace(main,
    h('h1', { tabindex: '-1' }, 'Overview'),
    emptyState,
    h('div', { class: 'toolbar' },
      h('div', { class: 'segmented', role: 'group', 'aria-label': 'Interval' },
        enabled.map((name) => h('button', {
          type: 'button', 'data-interval': name, 'aria-pressed': String(name === interval),
          onclick: () => go('overview', { interval: name, metric }),
        }, INTERVAL_NAMES[name] || name)))),
    bucketBar(summary, interval, at, query, go),
    cardGrid,
    h('h2', {}, 'History'),
    seriesHolder,
    h('h2', {}, 'Breakdowns'),
    distributions);

  const metricInfo = METRICS.find(([path]) => path === metric);
  let series = null;
  let seriesEnd = null;
  async function drawSeries() {
    if (!seriesInterval) {
      replace(seriesHolder, h('p', { class: 'muted' }, 'Enable a calendar interval in Settings to see history.'));
      return;
    }
    const to = interval === 'allTime' ? null : summary.end;
    let points;
    try {
      points = await fetchSeries(seriesInterval, metric, { to });
    } catch (failure) {
      if (failure.status === 401) throw failure;
      replace(seriesHolder, errorBox(`The chart cannot be drawn: ${failure.message}`));
      return;
    }
    if (!ctx.current()) return;
    if (points.labels.length === 0) {
      replace(seriesHolder, h('p', { class: 'muted' }, 'No history is kept this far back (see retention in Settings).'));
      return;
    }
    seriesEnd = points.lastStart;
    const title = `${metricInfo[1]}, ${INTERVAL_NAMES[seriesInterval].toLowerCase()}`;
    series = seriesChart(title, points.labels, points.values, metricInfo[2]);
    replace(seriesHolder, series.figure);
  }

  const breakdowns = DISTRIBUTIONS.map(([field, title]) => [field, distributionChart(title, summary[field])]);
  replace(distributions, breakdowns.map(([, chart]) => chart.figure));

  function showFigures(figures) {
    for (const [path, { value, kind }] of cards) value.textContent = format(pick(figures, path), kind);
  }

  function showEmptyState(allTimeTotal) {
    if (allTimeTotal > 0) {
      replace(emptyState);
      return;
    }
    const curl = `curl -X POST ${location.origin}/api/interaction \\\n  -H 'api-key: YOUR_API_KEY' -H 'Content-Type: application/json' \\\n  -d '{"action": "view", "originType": "page", "originID": "/", "userID": "u1"}'`;
    replace(emptyState, h('div', { class: 'notice', 'data-state': 'empty' },
      h('p', {}, h('strong', {}, 'No interactions yet'), ' — send your first one with:'),
      h('pre', {}, h('code', {}, curl)),
      h('p', { class: 'muted' }, 'Use the API key printed when Engauge first started (or ENGAUGE_APIKEY). The numbers here change as soon as it arrives.')));
  }

  await drawSeries();
  const allTime = interval === 'allTime' ? summary : live.latest.get('allTime');
  showEmptyState(allTime ? allTime.total : (await api('/dashboard/summaries/allTime')).body.total);

  const reload = () => go('overview', query({}), { replace: true });
  let refetchTimer = null;
  async function refetch() {
    refetchTimer = null;
    let fresh;
    try {
      fresh = await fetchSummary(interval, at);
    } catch (failure) {
      if (failure.status === 400) reload(); // the interval was disabled meanwhile
      else throw failure;
      return;
    }
    if (!ctx.current()) return;
    if (fresh.id !== summary.id) {
      reload(); // a new bucket began
      return;
    }
    summary = fresh;
    showFigures(summary);
    for (const [field, chart] of breakdowns) chart.update(summary[field]);
  }
  function scheduleRefetch() {
    refetchTimer ??= setTimeout(() => refetch().catch(ctx.warn), REFETCH_DELAY_MS);
  }
  // The live bucket ends even when nothing arrives: move on to the next one then.
  const untilEnd = isLive() && summary.end ? Date.parse(summary.end) - Date.now() + ROLLOVER_GRACE_MS : null;
  const rollover = untilEnd !== null && untilEnd < MAX_TIMER_MS ? setTimeout(reload, Math.max(0, untilEnd)) : null;

  return {
    onLive(summaries) {
      for (const event of summaries) {
        if (event.interval === 'allTime') showEmptyState(event.total);
        if (event.interval !== interval || !isLive()) continue;
        if (event.id !== summary.id) {
          reload();
          return;
        }
        showFigures(event);
        if (series && seriesEnd === summary.start) series.setLatest(pick(event, metric));
        scheduleRefetch();
      }
    },
    refresh: refetch,
    leave() {
      clearTimeout(refetchTimer);
      clearTimeout(rollover);
    },
  };
}

async function fetchSummary(interval, at) {
  const suffix = at ? `?at=${encodeURIComponent(at)}` : '';
  return (await api(`/dashboard/summaries/${interval}${suffix}`)).body;
}

function bucketBar(summary, interval, at, query, go) {
  if (interval === 'allTime') {
    return h('p', { class: 'bucket-label' }, 'All interactions ever received ', h('span', { class: 'badge' }, at ? 'history' : 'live'));
  }
  const later = Date.parse(summary.end) > Date.now() ? null : summary.end;
  const picker = h('input', { type: 'datetime-local', id: 'bucket-at', step: '60', value: wallTime(at ? summary.start : '').replace(' ', 'T') });
  return h('div', { class: 'toolbar', role: 'group', 'aria-label': 'Bucket' },
    h('button', { type: 'button', 'data-step': 'earlier', onclick: () => go('overview', query({ at: earlier(summary) })) }, '◀ Earlier'),
    h('span', { class: 'bucket-label', 'data-bucket': summary.id },
      `${wallTime(summary.start)} → ${wallTime(summary.end)} (${zoneOf(summary.start)}) `,
      h('span', { class: 'badge' }, at ? 'history' : 'live')),
    h('button', { type: 'button', 'data-step': 'later', disabled: !at,
      onclick: () => go('overview', query({ at: later })) }, 'Later ▶'),
    h('button', { type: 'button', 'data-step': 'now', disabled: !at, onclick: () => go('overview', query({ at: null })) }, 'Now'),
    h('form', { class: 'toolbar', onsubmit: (event) => {
      event.preventDefault();
      if (picker.value) go('overview', query({ at: picker.value }));
    } },
    h('label', { for: 'bucket-at' }, 'Go to'), picker, h('button', { type: 'submit' }, 'Show')));
}
