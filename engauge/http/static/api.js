// The dashboard API over fetch, and the login token kept fresh before it expires.

export class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const RETRY_MS = 30000;
let refreshTimer = null;

/** ``onLoggedOut`` is called when the login cannot be renewed any more. */
export const session = { onLoggedOut: () => {} };

/** A JSON request; resolves to ``{body, headers}`` or throws an ApiFailure with the server's message. */
export async function api(path, { method = 'GET', json } = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (json !== undefined) {
    init.body = JSON.stringify(json);
    init.headers['Content-Type'] = 'application/json';
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiFailure(0, 'The Engauge server cannot be reached. Is it running?');
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new ApiFailure(response.status, body?.message || `${response.status} ${response.statusText}`);
  }
  return { body, headers: response.headers };
}

function keepFresh(expirySeconds) {
  schedule(Math.max(5, expirySeconds * 0.75) * 1000);
}

function schedule(delay) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => refresh().catch((failure) => {
    // Unreachable for now: try again while the token may still be valid.
    if (failure.status === 401) session.onLoggedOut();
    else schedule(RETRY_MS);
  }), delay);
}

/** Renews the login cookie, and again before the new one expires. Throws 401 when logged out. */
export async function refresh() {
  const { body } = await api('/refresh-token');
  keepFresh(body.tokenExpiry);
  return body;
}

export async function login(username, password) {
  const { body } = await api('/login', { method: 'POST', json: { username, password } });
  keepFresh(body.tokenExpiry);
}

export async function logout() {
  clearTimeout(refreshTimer);
  await api('/logout');
}
