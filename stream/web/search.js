// logviewer: "search history" mode of the viewer. It asks GET /api/search
// (the history kept on disk with --data-dir) and shows the matches in the
// viewer's own list, through the small set of hooks app.js exposes; "Live
// from the selected line" opens the live view resuming at that moment.
// Like app.js, it puts log text in the DOM only as text.
'use strict';

(() => {
  const PAGE = 500; // matches asked for per request
  const MAX = 50000; // matches kept, as the viewer keeps lines
  const hooks = window.LogViewerHooks;
  const $ = (id) => document.getElementById(id);
  const bar = $('histbar');
  const toggle = $('histtoggle');
  if (!hooks || !bar || !toggle) return;
  const ui = {
    q: $('histq'), since: $('histsince'), until: $('histuntil'), order: $('historder'),
    more: $('histmore'), at: $('histat'), status: $('histstatus'),
  };

  let found = []; // {id, data} of the matches shown, in the order received
  let cursor = ''; // where the next page starts
  let params = null; // the search being paged
  let busy = false;

  const nf = new Intl.NumberFormat();
  const mb = (n) => (n / 1e6).toFixed(n < 1e7 ? 1 : 0) + ' MB';

  // idKey orders event IDs "<epoch>-<seq>" numerically.
  function idKey(id) {
    const m = /^(\d+)-(\d+)$/.exec(id || '');
    return m ? [Number(m[1]), Number(m[2])] : [0, 0];
  }
  const before = (a, b) => { const x = idKey(a); const y = idKey(b); return x[0] < y[0] || (x[0] === y[0] && x[1] < y[1]); };

  // liveFrom is the address of the live view resuming just before the
  // record id (resuming is exclusive), on its channel, with it selected.
  function liveFrom(id, ch) {
    const k = idKey(id);
    const h = new URLSearchParams();
    if (ch) h.set('ch', ch);
    h.set('sel', id);
    return './?from=' + encodeURIComponent(k[0] + '-' + Math.max(k[1] - 1, 0)) + '#' + h.toString();
  }

  function setStatus(text) {
    ui.status.textContent = text;
  }

  // selected returns the match the address selects (the viewer sets #sel=
  // when a line is clicked), else the newest match.
  function selected() {
    const sel = new URLSearchParams(location.hash.slice(1)).get('sel');
    let best = null;
    for (const f of found) {
      if (f.id === sel) return f;
      if (!best || before(best.id, f.id)) best = f;
    }
    return best;
  }

  function updateAt() {
    const f = selected();
    ui.at.hidden = !f;
    if (f) ui.at.href = liveFrom(f.id, f.ch);
  }

  function show() {
    const sorted = found.slice().sort((a, b) => (before(a.id, b.id) ? -1 : 1));
    hooks.show(sorted.map((f) => f.data));
    updateAt();
  }

  async function page() {
    if (busy || !params) return;
    busy = true;
    ui.more.disabled = true;
    const q = new URLSearchParams(params);
    if (cursor) q.set('cursor', cursor);
    setStatus('searching\u2026');
    try {
      const resp = await fetch('api/search?' + q.toString(), { cache: 'no-store', headers: { Accept: 'application/x-ndjson' } });
      const body = await resp.text();
      if (!resp.ok) {
        setStatus(resp.status === 501 ? 'History search needs the daemon to keep history on disk (--data-dir).' : 'Search failed: ' + body.trim());
        return;
      }
      let end = null;
      for (const line of body.split('\n')) {
        if (!line) continue;
        let o;
        try {
          o = JSON.parse(line);
        } catch {
          continue;
        }
        if (o && o._search) end = o._search;
        else if (o && typeof o._event_id === 'string') found.push({ id: o._event_id, ch: String(o._channel || ''), data: line });
      }
      if (found.length > MAX) found = found.slice(found.length - MAX);
      cursor = end && end.more ? end.cursor : '';
      ui.more.hidden = !cursor;
      let text = nf.format(found.length) + ' matching lines';
      if (end) text += ', ' + mb(end.scanned_bytes) + ' of history read';
      if (end && end.holes) text += '; ' + end.holes + ' stretches were not stored (disk full)';
      if (end && end.error) text += '; stopped: ' + end.error;
      if (cursor) text += (found.length && end.records === 0 ? '; none in this stretch, more to read' : '; more to read');
      setStatus(text);
      show();
    } catch (err) {
      setStatus('Search failed: ' + err);
    } finally {
      busy = false;
      ui.more.disabled = false;
    }
  }

  function start(ev) {
    ev.preventDefault();
    const s = hooks.state();
    params = { q: ui.q.value.trim(), limit: String(PAGE), order: ui.order.value };
    if (s.cs) params.cs = '1';
    if (s.lvl < 7) params.level = String(s.lvl);
    if (!s.channels.includes('*')) params.ch = s.channels.join(',');
    if (ui.since.value.trim()) params.since = ui.since.value.trim();
    if (ui.until.value.trim()) params.until = ui.until.value.trim();
    ui.more.textContent = ui.order.value === 'asc' ? 'Later matches' : 'Older matches';
    found = [];
    cursor = '';
    hooks.stopLive();
    page();
  }

  function open(on) {
    bar.hidden = !on;
    toggle.setAttribute('aria-pressed', String(on));
    document.body.classList.toggle('searching', on);
    if (on) {
      if (!ui.q.value) ui.q.value = hooks.state().q;
      ui.q.focus();
    } else if (params) {
      params = null;
      found = [];
      hooks.live('');
    }
  }

  toggle.addEventListener('click', () => open(bar.hidden));
  bar.addEventListener('submit', start);
  ui.more.addEventListener('click', page);
  $('histlive').addEventListener('click', (ev) => {
    ev.preventDefault();
    open(false);
  });
  // The viewer names the clicked line in the address with replaceState,
  // which fires no event: look again after every click, and right before
  // the link is followed.
  window.addEventListener('hashchange', updateAt);
  document.addEventListener('click', () => setTimeout(updateAt, 0));
  ui.at.addEventListener('click', updateAt);

  // A link made by liveFrom: resume the live view at that moment.
  const from = new URLSearchParams(location.search).get('from');
  if (from && /^\d+-\d+$/.test(from)) hooks.live(from);
})();
