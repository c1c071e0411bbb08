/*! Engauge browser tracker.
 * Stored on the visitor's device, in localStorage only (no cookies, ever):
 *   engauge.visitor  a random id for an anonymous visitor
 *   engauge.user     {"userID", "userType"} set by engauge.identify(), removed by identify(null)
 * Nothing else is stored. Nothing is sent when Do-Not-Track is on or data-disabled is set.
 */
(function (w, d) {
  'use strict';
  var warn = function (m) { w.console && console.warn('engauge: ' + m); };
  var q = w.engauge;
  if (q && q.track) return; // loaded twice: keep the first copy
  var on = false, url, store, mem = {}, user, lastPath, batch = null;

  // Interactions are sent at once, or collected into one request while the queue is replayed.
  function send(x) { batch ? batch.push(x) : post([x]); }
  function post(list) {
    var body = JSON.stringify(list);
    // Beacons survive page unload; text/plain keeps both paths a CORS simple request (no preflight).
    if (navigator.sendBeacon && navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }))) return;
    if (w.fetch) fetch(url, { method: 'POST', body: body, keepalive: true, mode: 'cors', credentials: 'omit',
      headers: { 'Content-Type': 'text/plain' } }).catch(function () {});
  }

  // randomUUID needs a secure context (https); getRandomValues works on plain http pages too.
  function rid() {
    var c = w.crypto, b = new Uint8Array(16), s = '', i;
    if (c.randomUUID) return c.randomUUID();
    for (c.getRandomValues(b), i = 0; i < 16; i++) s += (b[i] + 256).toString(16).slice(1);
    return s;
  }

  // localStorage may be missing or throw (privacy modes): fall back to memory for this page's life.
  // Memory is the page's copy, so a full or read-only storage still keeps one id per page.
  function get(k) { if (k in mem) return mem[k]; try { return mem[k] = store.getItem(k); } catch (e) {} }
  function put(k, v) { mem[k] = v; try { v == null ? store.removeItem(k) : store.setItem(k, v); } catch (e) {} }
  function str(v, n) { return typeof v == 'string' || typeof v == 'number' ? String(v).slice(0, n || 256) : undefined; }

  function device() {
    var ua = navigator.userAgent || '', mm = function (m) { return w.matchMedia && w.matchMedia(m).matches; };
    if (/iPad|Tablet|PlayBook|Silk|Android(?!.*Mobi)/i.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1)) return 'tablet';
    if (/Mobi|iPhone|iPod|Phone/i.test(ua)) return 'phone';
    if (mm('(pointer: coarse)') && !mm('(hover: hover)')) return mm('(max-width: 599px)') ? 'phone' : 'tablet';
    return 'desktop';
  }

  // One interaction with the fields every event carries; properties with no value are left out.
  // No timestamp: events leave at once, and the server's receipt time cannot be skewed by a
  // visitor's clock (one running 5 minutes fast would have every event refused).
  function event(action, props) {
    var x = { action: action, originType: 'page', originID: str(location.pathname), deviceType: device(),
      id: rid() }, p = {}, k, n = 0;
    if (user) { x.userID = user.userID; x.userType = user.userType; }
    else {
      x.userID = get('engauge.visitor');
      if (!x.userID || x.userID.length > 64) put('engauge.visitor', x.userID = rid());
      x.userType = 'anonymous';
    }
    for (k in props) if (props[k] != null && props[k] !== '') { p[k] = props[k]; n++; }
    if (n) x.properties = p;
    return x;
  }

  // A page view, unless the path is the one viewed last (pushState to the same page).
  function view(first) {
    if (location.pathname === lastPath) return;
    lastPath = location.pathname;
    var p = { screenWidth: w.screen && screen.width, language: navigator.language },
      u = new URLSearchParams(location.search), r = first && d.referrer && new URL(d.referrer);
    // The external referrer only on the first view: later SPA views would count it again.
    if (r && r.origin !== location.origin) p.ref = str(r.origin + r.pathname, 1024);
    ['source', 'medium', 'campaign', 'term', 'content'].forEach(function (k) { p['utm_' + k] = str(u.get('utm_' + k), 1024); });
    send(event('view', p));
  }

  function track(action, o) {
    if (typeof action != 'string' || !action || action.length > 256) return warn('track(action, options) needs an action string');
    var x = event(action);
    o = o && typeof o == 'object' ? o : {};
    if (o.entityType != null) x.entityType = str(o.entityType);
    if (o.entityID != null) x.entityID = str(o.entityID);
    if (o.properties && typeof o.properties == 'object') x.properties = clean(o.properties, '', {}, 0);
    send(x);
  }

  // Properties as the server takes them (SPEC §1), so one odd value cannot lose the whole
  // event: nested objects become dotted keys; at most 100 keys of 1-128 characters; strings
  // cut to 1024; arrays keep up to 100 strings and numbers; other values are left out.
  function scalar(v) {
    var t = typeof v;
    if (t == 'string') return v.slice(0, 1024);
    if (t == 'number' && isFinite(v) && Math.abs(v) < 9e15) return v;
  }
  function clean(o, prefix, out, depth) {
    for (var k in o) {
      var v = o[k], name = prefix + k, s;
      if (Object.keys(out).length >= 100) break;
      if (v == null || name.length > 128) continue;
      if (Array.isArray(v)) {
        s = v.map(scalar).filter(function (e) { return e !== undefined; }).slice(0, 100);
        if (s.length) out[name] = s;
      } else if (typeof v == 'object' && depth < 5) clean(v, name + '.', out, depth + 1);
      else if (typeof v == 'boolean') out[name] = v;
      else if ((s = scalar(v)) !== undefined) out[name] = s;
    }
    return out;
  }

  function identify(id, type) {
    if (id == null) return put('engauge.user', user = null);
    if (!str(id)) return warn('identify(userID, userType) needs a userID string');
    user = { userID: str(id), userType: str(type) || 'user' };
    put('engauge.user', JSON.stringify(user));
  }

  // Entry points never throw into the host page; everything is a no-op unless tracking is on.
  function guard(f) { return function () { try { if (on) f.apply(null, arguments); } catch (e) {} }; }
  var api = { track: guard(track), identify: guard(identify) };
  api.push = function (a) {
    try {
      a = [].slice.call(a);
      if (a[0] == 'track' || a[0] == 'identify') api[a[0]].apply(null, a.slice(1)); else warn('unknown method ' + a[0]);
    } catch (e) {}
  };
  w.engauge = api;

  try {
    var el = d.currentScript, all = d.getElementsByTagName('script'), i, key;
    for (i = all.length - 1; !el && i >= 0; i--) if (/\/engauge\.js([?#]|$)/.test(all[i].src)) el = all[i];
    key = el && el.getAttribute('data-key');
    if (!key) warn('data-key is missing on the <script> tag; nothing is tracked');
    else if (!el.hasAttribute('data-disabled') && navigator.doNotTrack !== '1' && w.doNotTrack !== '1') {
      url = new URL(el.src).origin + '/api/interactions?key=' + encodeURIComponent(key);
      try { store = w.localStorage; } catch (e) {}
      on = true;
      try { var u = JSON.parse(get('engauge.user')); identify(u.userID, u.userType); } catch (e) {}
      // SPA navigation: pushState is a new page; replaceState only rewrites the current one.
      var push = history.pushState;
      history.pushState = function () {
        var r = push.apply(this, arguments);
        try { view(); } catch (e) {}
        return r;
      };
      w.addEventListener('popstate', function () { try { view(); } catch (e) {} });
    }
    // Calls queued before the script loaded are replayed before the first view is built, so a queued
    // identify() owns it; the view goes first in the one request that carries them all.
    batch = [];
    if (q && q.length) for (i = 0; i < q.length; i++) api.push(q[i]);
    if (on) view(true);
    var b = batch;
    batch = null;
    if (b.length) { b.unshift(b.pop()); post(b); }
  } catch (e) {}
  batch = null;
})(window, document);
