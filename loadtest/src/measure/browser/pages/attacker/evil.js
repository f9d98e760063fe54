// What an attacker's page can make the visitor's browser send (cross-site request forgery).
'use strict';
window.attack = {
  // A classic form POST: a top-level navigation, no preflight, no way to read the answer.
  form(url) {
    const f = document.createElement('form');
    f.method = 'POST';
    f.action = url;
    const i = document.createElement('input');
    i.name = 'x';
    i.value = '1';
    f.append(i);
    document.body.append(f);
    f.submit();
    return 'submitted';
  },
  // fetch with the visitor's credentials: a PUT with JSON needs a CORS preflight.
  async fetchPut(url, body) {
    try {
      const r = await fetch(url, {
        method: 'PUT',
        credentials: 'include',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
      return { status: r.status, body: await r.text() };
    } catch (e) {
      return { status: 0, body: String(e) };
    }
  },
};
