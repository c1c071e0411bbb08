// Small DOM and formatting helpers. Text from the API is always set as text, never as HTML.

export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) element.addEventListener(name.slice(2), value);
    else if (name === 'class') element.className = value;
    else element.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

export function replace(parent, ...children) {
  parent.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined));
}

export const NONE = '—';

const whole = new Intl.NumberFormat('en', { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat('en', { maximumFractionDigits: 2 });
const percent = new Intl.NumberFormat('en', { style: 'percent', maximumFractionDigits: 1 });

/** A figure as shown: counts whole, rates as percentages, durations in s/min/h; null as —. */
export function format(value, kind = 'number') {
  if (value === null || value === undefined) return NONE;
  if (typeof value !== 'number') return String(value);
  switch (kind) {
    case 'count': return whole.format(value);
    case 'rate': return percent.format(value);
    case 'duration': return duration(value);
    default: return decimal.format(value);
  }
}

function duration(seconds) {
  if (seconds < 60) return `${decimal.format(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** The value at a dotted path such as ``sessions.started``. */
export function pick(object, path) {
  return path.split('.').reduce((value, key) => (value === null || value === undefined ? value : value[key]), object);
}

/** The wall time of an API instant in the server's zone: "2026-12-04 13:00". */
export function wallTime(label) {
  return label ? label.slice(0, 16).replace('T', ' ') : '';
}

/** The zone offset of an API instant, as "UTC+01:00". */
export function zoneOf(label) {
  const match = /([+-]\d\d:\d\d)$/.exec(label || '');
  return match ? `UTC${match[1]}` : 'UTC';
}

/** A short label for a bucket start, as precise as its interval needs. */
export function bucketLabel(label, interval) {
  switch (interval) {
    case 'hourly': return label.slice(5, 16).replace('T', ' ');
    case 'daily': case 'weekly': return label.slice(0, 10);
    case 'monthly': return label.slice(0, 7);
    case 'quarterly': return `${label.slice(0, 4)} Q${Math.floor((Number(label.slice(5, 7)) - 1) / 3) + 1}`;
    case 'yearly': return label.slice(0, 4);
    default: return wallTime(label);
  }
}

export const INTERVAL_NAMES = {
  allTime: 'All time', hourly: 'Hourly', daily: 'Daily', weekly: 'Weekly',
  monthly: 'Monthly', quarterly: 'Quarterly', yearly: 'Yearly',
};

export function table(columns, rows, caption) {
  return h('div', { class: 'table-wrap' },
    h('table', {},
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((column) => h('th', { scope: 'col', class: column.number ? 'number' : null }, column.label)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((column) => {
        const value = column.render ? column.render(row) : format(pick(row, column.field), column.kind);
        return h('td', { class: column.number ? 'number' : null }, value);
      }))))));
}

const FOCUS_KEYS = ['data-interval', 'data-metric', 'data-step', 'data-sort', 'data-page', 'id'];

/** A selector that finds the same control after a view is drawn again, or null. */
export function focusKey(element) {
  if (!element || element === document.body) return null;
  const name = FOCUS_KEYS.find((key) => element.hasAttribute(key));
  return name ? `[${name}="${CSS.escape(element.getAttribute(name))}"]` : null;
}

export function errorBox(message) {
  return h('p', { class: 'error', role: 'alert' }, message);
}
