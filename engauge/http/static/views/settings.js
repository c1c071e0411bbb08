// Settings: interval toggles, keeping raw interactions, and buckets kept per interval.

import { api } from '../api.js';
import { INTERVAL_NAMES, errorBox, h, replace } from '../dom.js';

export async function settingsView(ctx) {
  const { main } = ctx;
  const { body: settings } = await api('/dashboard/settings');
  if (!ctx.current()) return {};
  const status = h('p', { role: 'status', 'data-status': '' });
  const toggles = Object.entries(settings.statsToggles).map(([name, on]) =>
    h('label', {}, h('input', { type: 'checkbox', name: `toggle-${name}`, checked: on }), INTERVAL_NAMES[name] || name));
  const retention = Object.entries(settings.retention).map(([name, buckets]) =>
    h('label', {}, h('span', {}, INTERVAL_NAMES[name] || (name === 'interactions' ? 'Raw interactions, days' : name)),
      h('input', { type: 'number', name: `retention-${name}`, min: '1', max: '100000', step: '1', required: true, value: String(buckets) })));
  const keep = h('input', { type: 'checkbox', name: 'interactions', checked: settings.interactions });

  async function save(event) {
    event.preventDefault();
    const form = event.currentTarget;
    const patch = { statsToggles: {}, retention: {}, interactions: keep.checked };
    for (const name of Object.keys(settings.statsToggles)) patch.statsToggles[name] = form.elements[`toggle-${name}`].checked;
    for (const name of Object.keys(settings.retention)) patch.retention[name] = Number(form.elements[`retention-${name}`].value);
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    try {
      await api('/dashboard/settings', { method: 'PUT', json: patch });
      replace(status, 'Saved. The settings apply now and after a restart.');
    } catch (failure) {
      if (failure.status === 401) throw failure;
      replace(status, errorBox(failure.message));
    } finally {
      button.disabled = false;
    }
  }

  replace(main,
    h('h1', { tabindex: '-1' }, 'Settings'),
    h('form', { onsubmit: (event) => save(event).catch(ctx.fail) },
      h('fieldset', {}, h('legend', {}, 'Intervals with statistics'), toggles,
        h('p', { class: 'muted' }, 'A disabled interval stops collecting; its kept buckets stay until retention drops them.')),
      h('fieldset', {}, h('legend', {}, 'Raw interactions'),
        h('label', {}, keep, 'Keep raw interactions (needed to export them)')),
      h('fieldset', {}, h('legend', {}, 'Retention: buckets kept per interval, days of raw interactions'), h('div', { class: 'retention' }, retention)),
      h('button', { type: 'submit', class: 'primary' }, 'Save settings'),
      status));
  return {};
}
