// The live stream: one EventSource for the whole page, its state shown in the top bar.

import { refresh } from './api.js';

const RETRY_MS = 3000;

export class Live {
  constructor(indicator, onLoggedOut, onReconnected) {
    this.indicator = indicator;
    this.onLoggedOut = onLoggedOut;
    this.onReconnected = onReconnected;
    this.wasDown = false;
    this.source = null;
    this.retryTimer = null;
    this.up = false;
    this.latest = new Map();
    this.listeners = new Set();
  }

  start() {
    this.stopped = false;
    if (this.source) return;
    this.indicator.hidden = false;
    const source = new EventSource('/dashboard/stream');
    this.source = source;
    source.addEventListener('open', () => {
      this.show(true);
      // Back after an outage: what is on screen may have missed changes.
      if (this.wasDown) this.onReconnected();
      this.wasDown = false;
    });
    source.addEventListener('summary', (event) => this.receive(JSON.parse(event.data)));
    source.addEventListener('error', () => {
      this.show(false);
      this.wasDown = true;
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a lapsed login) or the server is gone: check the login, then reconnect.
        this.source = null;
        this.retry();
      }
    });
  }

  stop() {
    clearTimeout(this.retryTimer);
    this.stopped = true;
    this.source?.close();
    this.source = null;
    this.wasDown = false;
    this.latest.clear();
    this.up = false;
    this.indicator.dataset.state = 'off';
    this.indicator.querySelector('.live-label').textContent = 'Connecting…';
    this.indicator.hidden = true;
  }

  retry() {
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(async () => {
      try {
        await refresh();
        if (!this.stopped) this.start();
      } catch (failure) {
        if (failure.status === 401) this.onLoggedOut();
        else this.retry();
      }
    }, RETRY_MS);
  }

  receive(summaries) {
    for (const summary of summaries) this.latest.set(summary.interval, summary);
    this.show(true);
    for (const listener of this.listeners) listener(summaries);
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  show(up) {
    if (this.up === up && this.indicator.dataset.state !== 'off') return;
    this.up = up;
    this.indicator.dataset.state = up ? 'up' : 'down';
    this.indicator.querySelector('.live-label').textContent = up ? 'Live' : 'Offline — reconnecting';
    this.indicator.title = up
      ? 'Numbers update as interactions arrive'
      : 'The live stream is down; numbers are refreshed every 10 s until it is back';
  }
}
