// The app: logs in, keeps its credential the way single-page apps do, calls the API.
//   carrier=session  the server's HttpOnly cookie; every call with credentials: 'include'
//   carrier=token    access and refresh token in localStorage, sent in Authorization
//   carrier=memory   the access token only in the variable below; the refresh token is an
//                    HttpOnly cookie of this origin, kept by the token handler under /bff/
'use strict';
(() => {
  const params = new URLSearchParams(location.search);
  const carrier = params.get('carrier') || 'session';
  const api = params.get('api') || location.origin;
  let accessToken = null; // carrier=memory only

  // ===== DELIBERATE INJECTION POINT (experiment `browser` only) =====
  // The `name` parameter is written into the page as HTML, unescaped: the bug an XSS attack
  // needs. The project's servers serve no page; this one exists only for this experiment.
  const name = params.get('name');
  if (name !== null) document.getElementById('greeting').innerHTML = 'Hello, ' + name;
  // ===== end of the injection point =====

  function headers(json) {
    const h = {};
    if (json) h['Content-Type'] = 'application/json';
    if (carrier === 'token') {
      const t = localStorage.getItem('access_token');
      if (t) h['Authorization'] = 'Bearer ' + t;
    }
    if (carrier === 'memory' && accessToken) h['Authorization'] = 'Bearer ' + accessToken;
    return h;
  }

  // A token kept in memory is gone when the page reloads: like any app with a token
  // handler, this one asks it for a fresh access token first (its cookie is the session).
  const ready = carrier !== 'memory' ? Promise.resolve() :
    fetch('/bff/refresh?case=restore', { method: 'POST' })
      .then((r) => (r.ok ? r.json() : null))
      .then((t) => { if (t) accessToken = t.access_token; })
      .catch(() => {});

  // Every call is tagged with its case, so the balancer's log can be read case by case.
  async function call(method, url, body, kase) {
    await ready;
    const init = { method, headers: headers(body !== undefined) };
    if (body !== undefined) init.body = JSON.stringify(body);
    if (carrier === 'session') init.credentials = 'include';
    try {
      const r = await fetch(url + (url.includes('?') ? '&' : '?') + 'case=' + kase, init);
      return { status: r.status, body: await r.text() };
    } catch (e) {
      return { status: 0, body: String(e) };
    }
  }

  window.app = {
    async login(username, password, kase) {
      if (carrier === 'memory') {
        const r = await call('POST', '/bff/login', { username, password }, kase);
        if (r.status === 200) accessToken = JSON.parse(r.body).access_token;
        return r;
      }
      // A login never carries the previous credential.
      localStorage.clear();
      const r = await call('POST', api + '/auth/login', { username, password }, kase);
      if (carrier === 'token' && r.status === 200) {
        const t = JSON.parse(r.body);
        localStorage.setItem('access_token', t.access_token);
        localStorage.setItem('refresh_token', t.refresh_token);
      }
      document.getElementById('status').textContent = 'login: ' + r.status;
      return r;
    },
    me(kase) {
      return call('GET', api + '/api/me', undefined, kase);
    },
    setRoles(user, roles, kase) {
      return call('PUT', api + '/api/admin/users/' + encodeURIComponent(user) + '/roles', { roles }, kase);
    },
  };
})();
