// One metric over an interval's history, for the line charts.

import { api } from './api.js';
import { bucketLabel } from './dom.js';

const SHOWN_AT_LEAST = 14;

/**
 * The points of ``/dashboard/series``, without the run of empty buckets before the first
 * interaction (a year of zeros says nothing), but at least SHOWN_AT_LEAST of them.
 */
export async function fetchSeries(interval, metric, { to, scope } = {}) {
  const query = new URLSearchParams({ interval, metrics: metric });
  if (to) query.set('to', to);
  if (scope) query.set('scope', scope);
  const { body } = await api(`/dashboard/series?${query}`);
  const points = body.points;
  const first = points.findIndex((point) => point[metric] !== null && point[metric] !== 0);
  const start = Math.max(0, Math.min(first === -1 ? points.length : first, points.length - SHOWN_AT_LEAST));
  const kept = points.slice(start);
  return {
    labels: kept.map((point) => bucketLabel(point.start, interval)),
    values: kept.map((point) => point[metric]),
    lastStart: kept.at(-1)?.start,
  };
}
