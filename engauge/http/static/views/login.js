// The login form: username and password to the login cookie.

import { login } from '../api.js';
import { errorBox, h, replace } from '../dom.js';

export function loginView({ main, message: notice, onLoggedIn }) {
  const message = h('div', { 'aria-live': 'assertive' }, notice ? errorBox(notice) : null);
  const username = h('input', { type: 'text', id: 'username', name: 'username', autocomplete: 'username', required: true });
  const password = h('input', { type: 'password', id: 'password', name: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Log in');

  async function send(event) {
    event.preventDefault();
    submit.disabled = true;
    replace(message);
    try {
      await login(username.value, password.value);
      onLoggedIn();
    } catch (failure) {
      replace(message, errorBox(failure.status === 401 ? 'Wrong username or password.' : failure.message));
      password.select();
    } finally {
      submit.disabled = false;
    }
  }

  replace(main,
    h('h1', { tabindex: '-1' }, 'Log in to Engauge'),
    h('form', { class: 'stacked panel', onsubmit: send },
      h('label', { for: 'username' }, 'Username', username),
      h('label', { for: 'password' }, 'Password', password),
      message,
      submit),
    h('p', { class: 'muted' }, 'The username and password are ENGAUGE_USER and ENGAUGE_PASSWORD; a generated password is printed when Engauge first starts.'));
  username.focus();
  return {};
}
