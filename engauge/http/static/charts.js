// Charts drawn with Chart.js (served from static/vendor/), each with a data table beside it
// so every figure can be read without colour or a mouse.

import { format, h, replace, table } from './dom.js';

const drawn = new Set();

function chartsAvailable() {
  return typeof window.Chart === 'function';
}

/** Destroys every chart of the view being left. */
export function destroyCharts() {
  for (const chart of drawn) chart.destroy();
  drawn.clear();
}

function colors() {
  const style = getComputedStyle(document.documentElement);
  return {
    accent: style.getPropertyValue('--accent').trim() || '#1f5fd6',
    text: style.getPropertyValue('--muted').trim() || '#5d6068',
    line: style.getPropertyValue('--line').trim() || '#dcdde1',
  };
}

function draw(box, config, description, wholeNumbers) {
  if (!chartsAvailable()) {
    box.replaceWith(h('p', { class: 'muted' },
      'Charts are unavailable: the chart library is not installed (run make assets). The data is in the table below.'));
    return null;
  }
  const canvas = h('canvas', { role: 'img', 'aria-label': description });
  box.append(canvas);
  const { accent, text, line } = colors();
  const ticks = { color: text, maxRotation: 0, autoSkip: true, precision: wholeNumbers ? 0 : undefined };
  const chart = new window.Chart(canvas, {
    ...config,
    options: {
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      plugins: { legend: { display: false } },
      scales: {
        x: { ticks, grid: { color: line } },
        y: { beginAtZero: true, ticks, grid: { color: line } },
      },
      ...config.options,
    },
  });
  chart.data.datasets.forEach((dataset) => Object.assign(dataset, { backgroundColor: accent, borderColor: accent }));
  chart.update();
  drawn.add(chart);
  return chart;
}

/** Rows of a SPEC §5 Distribution, the folded rest as "other". */
function distributionRows(distribution) {
  const rows = distribution.values.map(({ value, count, percentage }) => ({ value: String(value), count, percentage }));
  if (distribution.other > 0) {
    rows.push({ value: 'other', count: distribution.other, percentage: distribution.other / distribution.total });
  }
  return rows;
}

function forget(chart) {
  if (!chart) return;
  drawn.delete(chart);
  chart.destroy();
}

/**
 * A bar chart of a distribution (top 20 bars; the table lists every kept value).
 * ``update`` redraws it in place, keeping an opened table open.
 */
export function distributionChart(title, distribution) {
  const figure = h('figure', { class: 'chart' });
  const tableHolder = h('details', {}, h('summary', {}, `${title} as a table`));
  let chart = null;
  let shownEmpty = null;

  function update(next) {
    const rows = distributionRows(next);
    const shown = rows.slice(0, 20);
    const description = `Bar chart of ${title}: ` + shown.map((row) => `${row.value} ${format(row.count, 'count')}`).join(', ');
    tableHolder.querySelector('.table-wrap')?.remove();
    tableHolder.append(table([
      { field: 'value', label: 'Value' },
      { field: 'count', label: 'Count', kind: 'count', number: true },
      { field: 'percentage', label: 'Share', kind: 'rate', number: true },
    ], rows, title));
    if (chart && rows.length > 0) {
      chart.data.labels = shown.map((row) => row.value);
      chart.data.datasets[0].data = shown.map((row) => row.count);
      chart.options.indexAxis = rows.length > 6 ? 'y' : 'x';
      chart.update('none');
      chart.canvas.setAttribute('aria-label', description);
      return;
    }
    if (shownEmpty === (rows.length === 0)) return;
    shownEmpty = rows.length === 0;
    forget(chart);
    chart = null;
    if (shownEmpty) {
      replace(figure, h('figcaption', {}, title), h('p', { class: 'muted' }, 'No values in this bucket.'));
      return;
    }
    const box = h('div', { class: 'chart-box' });
    replace(figure, h('figcaption', {}, title), box, tableHolder);
    chart = draw(box, {
      type: 'bar',
      data: { labels: shown.map((row) => row.value), datasets: [{ label: title, data: shown.map((row) => row.count), maxBarThickness: 48 }] },
      options: { indexAxis: rows.length > 6 ? 'y' : 'x' },
    }, description, true);
  }

  update(distribution);
  return { figure, update };
}

/** A line chart of one metric over time; ``update`` redraws it with new points. */
export function seriesChart(title, labels, values, kind) {
  const box = h('div', { class: 'chart-box' });
  const figure = h('figure', { class: 'chart wide', 'data-chart': 'series' }, h('figcaption', {}, title), box);
  const tableHolder = h('details', {}, h('summary', {}, `${title} as a table`));
  figure.append(tableHolder);
  const describe = () => `Line chart of ${title}, ${labels.length} points, latest ${format(values.at(-1), kind)}`;
  const chart = draw(box, {
    type: 'line',
    data: { labels, datasets: [{ label: title, data: values, pointRadius: labels.length > 60 ? 0 : 3, spanGaps: false }] },
    options: { plugins: { legend: { display: false }, tooltip: { callbacks: { label: (item) => format(item.raw, kind) } } } },
  }, describe(), kind === 'count');
  const fillTable = () => {
    tableHolder.querySelector('.table-wrap')?.remove();
    const rows = labels.map((label, index) => ({ label, value: values[index] }));
    tableHolder.append(table([
      { field: 'label', label: 'Bucket' },
      { field: 'value', label: title, kind, number: true },
    ], rows.reverse(), title));
  };
  fillTable();
  return {
    figure,
    /** Sets the newest point's value (the live bucket). */
    setLatest(value) {
      values[values.length - 1] = value;
      chart?.update('none');
      chart?.canvas.setAttribute('aria-label', describe());
      fillTable();
    },
  };
}
