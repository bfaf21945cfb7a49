// logviewer: the browser viewer. Live tail over Server-Sent Events (read
// off the main thread by a worker, stream.js), channel list with rates,
// filter, pause, follow, download. No build step and no dependencies. Log text reaches the DOM only as text nodes (textContent,
// append of strings): never as markup.
'use strict';

(() => {
  // Records kept in memory, the oldest going first: 50,000 for the page,
  // shared by the panes of a split view (counted when this one opens).
  const CAP = Math.floor(50000 / (window.parent !== window ? Math.min(4, Math.max(1, window.parent.frames.length)) : 1));
  const TAIL = 500; // backfill asked for when a stream opens
  const ROW_H = 22; // px, matches --row-h in style.css
  const REC_LINE_H = 17; // px, line height of an expanded record (style.css .rec)
  const REC_PAD = 18; // px, padding and border of an expanded record
  const REC_GAP = 6; // px, space under an expanded record
  const OVERSCAN = 10; // rows drawn above and below the viewport
  const POLL_MS = 1500; // channel list refresh
  const SPARK_N = 40; // samples in a sparkline
  const MSG_MAX = 2000; // characters of a message drawn in its row
  const CHIPS_MAX = 12; // key=value chips drawn for a JSON message
  const CHIP_MAX = 60; // characters of a chip's value
  const MARK_MAX = 100; // highlighted matches per cell
  const FRAME_BUDGET_MS = 8; // parsing per animation frame, shared by the panes of a split view
  const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];
  const ID_RE = /^(\d+)-(\d+)$/;
  const SVG_NS = 'http://www.w3.org/2000/svg';

  const $ = (id) => document.getElementById(id);
  const ui = {
    conn: $('conn'), filter: $('filter'), caseBtn: $('case'), level: $('level'), utc: $('utc'),
    pause: $('pause'), follow: $('follow'), clear: $('clear'), download: $('download'),
    sideToggle: $('sidetoggle'), glob: $('glob'), globForm: $('globform'), channels: $('channels'),
    chanState: $('chanstate'), log: $('log'), spacer: $('spacer'), empty: $('empty'), jump: $('jump'),
    viewing: $('viewing'), stats: $('stats'), timeHead: document.querySelector('.cols .c-time'),
  };

  // el makes an element; text, when given, is set as text, never parsed.
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  const str = (v) => (v == null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));
  const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const pad2 = (n) => (n < 10 ? '0' : '') + n;
  const pad3 = (n) => (n < 10 ? '00' : n < 100 ? '0' : '') + n;
  const nf = new Intl.NumberFormat();

  // ---- view state, mirrored in the URL hash so a link reproduces the view ----

  const st = { channels: ['*'], q: '', cs: false, lvl: 7, utc: false, sel: '', ctx: false, fold: false };
  let selPending = ''; // a line the address selects, not yet received
  const dropsBy = new Map(); // channel -> lines the server dropped for this page
  const gapsBy = new Map(); // channel -> gaps the server announced for it
  let gapsAll = 0; // gaps announced for every channel in view

  function readHash() {
    const p = new URLSearchParams(location.hash.slice(1));
    const ch = (p.get('ch') || '').split(',').map((s) => s.trim()).filter(Boolean);
    const lvl = Number.parseInt(p.get('lvl') ?? '7', 10);
    return {
      channels: ch.length ? ch : ['*'],
      q: p.get('q') || '',
      cs: p.get('cs') === '1',
      lvl: lvl >= 0 && lvl <= 7 ? lvl : 7,
      utc: p.get('utc') === '1',
      sel: p.get('sel') || '',
      ctx: p.get('ctx') === '1',
      fold: p.get('fold') === '1',
    };
  }

  function writeHash() {
    const p = new URLSearchParams();
    if (!isAll(st.channels)) p.set('ch', st.channels.join(','));
    if (st.q) p.set('q', st.q);
    if (st.cs) p.set('cs', '1');
    if (st.lvl !== 7) p.set('lvl', String(st.lvl));
    if (st.utc) p.set('utc', '1');
    if (st.sel) p.set('sel', st.sel);
    if (st.ctx) p.set('ctx', '1');
    if (st.fold) p.set('fold', '1');
    const h = p.toString();
    const want = location.pathname + location.search + (h ? '#' + h : '');
    if (want !== location.pathname + location.search + location.hash) history.replaceState(null, '', want);
  }

  const isAll = (chs) => chs.includes('*');

  // ---- records ----

  let seq = 0; // local arrival number of every entry, lines and notices
  let records = []; // entries kept, oldest first
  let view = []; // entries that pass the filter, oldest first
  let incoming = []; // received, not yet taken in (taken in once per frame), from inHead on
  let inHead = 0;
  let pending = []; // held back while paused
  let pendingLost = 0;
  const expanded = new Set();
  const hwm = new Map(); // channel -> [a, b] of the newest "<a>-<b>" event ID taken
  const seenIds = new Set(); // event IDs of any other shape
  let droppedTotal = 0;
  let newSinceFollow = 0;
  let paused = false;
  let follow = true;
  let followSince = 0; // when follow was last turned on
  let lastK = Date.now() / 1000; // sort time of the latest entry

  // isDuplicate reports whether an event was taken already. Event IDs grow
  // per channel (a restarted server starts a later epoch), so one high-water
  // mark per channel is enough and survives Clear; other ID shapes are
  // remembered one by one.
  function isDuplicate(id, ch) {
    const m = ID_RE.exec(id);
    if (m) {
      const a = Number(m[1]);
      const b = Number(m[2]);
      const h = hwm.get(ch);
      if (h && (a < h[0] || (a === h[0] && b <= h[1]))) return true;
      hwm.set(ch, [a, b]);
      return false;
    }
    if (seenIds.has(id)) return true;
    seenIds.add(id);
    if (seenIds.size > 2 * CAP) {
      for (const x of seenIds) {
        seenIds.delete(x);
        if (seenIds.size <= CAP) break;
      }
    }
    return false;
  }

  const interned = new Map();

  // intern returns one copy of a short string seen often (a channel or an
  // app name), so 50,000 entries do not hold 50,000 copies.
  function intern(s) {
    const x = interned.get(s);
    if (x !== undefined) return x;
    if (interned.size >= 10000) interned.clear();
    interned.set(s, s);
    return s;
  }

  function toEntry(data) {
    let o;
    try {
      o = JSON.parse(data);
    } catch {
      return null;
    }
    if (!o || typeof o !== 'object') return null;
    const ch = str(o._channel);
    const id = typeof o._event_id === 'string' ? o._event_id : '';
    if (id && isDuplicate(id, ch)) return null;
    const lvl = Number.isInteger(o.level) && o.level >= 0 && o.level <= 7 ? o.level : -1;
    const t = Number(o.timestamp) || 0;
    if (t) lastK = t;
    // Every field an entry ever gets, set now: one shape for all entries
    // (smaller, faster), and the channel and app names shared.
    return {
      n: ++seq, k: t || lastK, id, ch: intern(ch), t, lvl, app: intern(str(o._app)), msg: str(o.short_message), raw: data,
      shape: undefined, mg: -1, mv: false, more: undefined, obj: undefined, extra: 0, pretty: undefined,
    };
  }

  // notice makes a notice entry; it gets its place (n, k) when it is taken
  // in, after the records that arrived before it.
  const notice = (kind, text) => ({ notice: kind, text });

  // push queues a received record (its JSON text, parsed later) or a
  // notice. The stream's worker hands over no more than it bounds.
  function push(e) {
    incoming.push(e);
    queueRender(true);
  }

  // byText lists channels and their counts: "web-1 1,000, db-1 34".
  const byText = (by) => [...by].sort((a, b) => b[1] - a[1]).slice(0, 8).map(([ch, k]) => (ch || 'other channels') + ' ' + nf.format(k)).join(', ') +
    (by.size > 8 ? ', \u2026' : '');

  const droppedText = (n, by) => nf.format(n) + ' lines dropped' + (by.size ? ' (' + byText(by) + ')' : '') +
    ': the server skipped them because this page fell behind';

  // pushDropped adds a "lines dropped" notice saying of which channels, or
  // adds to the one just before when nothing came between, so a struggling
  // page shows one notice per stretch of losses instead of one per event.
  function pushDropped(n, by) {
    const last = incoming.length > inHead ? incoming[incoming.length - 1] : paused ? null : records[records.length - 1];
    if (last && last.notice === 'dropped' && last.count) {
      last.count += n;
      for (const [ch, k] of by) last.by.set(ch, (last.by.get(ch) || 0) + k);
      last.text = droppedText(last.count, last.by);
      last.chs = [...last.by.keys()];
      const s = shown.get(last.n);
      if (s) s.gen = -1; // redraw it
      queueRender(true);
      return;
    }
    const e = notice('dropped', droppedText(n, by));
    e.count = n;
    e.by = by;
    e.chs = [...by.keys()];
    push(e);
  }

  // ---- filter ----

  let matchRe = null; // the parsed filter (query.js), or null when the box is empty
  let markRe = null; // the same with the g flag, to highlight

  function compileFilter() {
    matchRe = markRe = null;
    ui.filter.classList.remove('invalid');
    ui.filter.title = '';
    if (!st.q) return;
    try {
      // The server's language (query.js): words, "phrases", /regex/,
      // field:value, level:<=warning, -term.
      const compiled = window.LogQuery.parse(st.q, st.cs);
      if (!compiled.empty) {
        matchRe = compiled;
        markRe = compiled.mark;
      }
    } catch (err) {
      matchRe = markRe = null;
      ui.filter.classList.add('invalid');
      ui.filter.title = String(err.message);
    }
  }

  function matches(e) {
    if (e.notice) return true;
    if ((e.lvl < 0 ? 7 : e.lvl) > st.lvl) return false;
    if (!matchRe) return true;
    let rec;
    if (matchRe.fields) {
      try {
        rec = JSON.parse(e.raw);
      } catch {
        return false;
      }
    } else {
      rec = { short_message: e.msg, _app: e.app, _channel: e.ch, level: e.lvl >= 0 ? e.lvl : undefined };
    }
    return matchRe.match(rec);
  }

  // Entries are kept in time order (k: the record's timestamp), ties in
  // arrival order, so the backfills of several streams interleave as they
  // happened instead of one after the other.
  const before = (a, b) => a.k < b.k || (a.k === b.k && a.n < b.n);

  // lowerBound is the first index of list whose entry is not before e.
  function lowerBound(list, e) {
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (before(list[mid], e)) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  // place puts e into the sorted list and returns its index: appended when
  // it is the newest, as nearly all live entries are.
  function place(list, e) {
    if (!list.length || before(list[list.length - 1], e)) {
      list.push(e);
      return list.length - 1;
    }
    const i = lowerBound(list, e);
    list.splice(i, 0, e);
    return i;
  }

  // ---- taking records in, once per frame ----

  let scrollShift = 0; // height removed (+) or added (-) above the viewport
  let scrollTo = null; // keep this entry at the top after the view is rebuilt
  let viewLines = 0; // lines (not notices) in view
  let recordNotices = 0; // notices among the records

  function absorb(batch) {
    if (wholeView()) {
      // Context and folding depend on the neighbours: build the view anew.
      for (const e of batch) {
        place(records, e);
        if (e.notice) recordNotices++;
      }
      if (records.length > CAP + CAP / 10) trim();
      rebuildView();
      return;
    }
    // Lines placed above the viewport must not move what the user reads.
    let topIdx = 0;
    if (!follow && view.length) {
      computeOpened();
      topIdx = indexAt(ui.log.scrollTop);
    }
    for (const e of batch) {
      place(records, e);
      if (e.notice) recordNotices++;
      if (!matches(e)) continue;
      const i = place(view, e);
      if (!e.notice) viewLines++;
      if (follow) continue;
      if (i < topIdx) {
        scrollShift -= ROW_H;
        topIdx++;
      } else if (!e.notice) newSinceFollow++;
    }
    if (records.length > CAP + CAP / 10) trim();
  }

  function trim() {
    const cut = records.length - CAP;
    const first = records[cut];
    for (let i = 0; i < cut; i++) if (records[i].notice) recordNotices--;
    records = records.slice(cut);
    const k = lowerBound(view, first);
    if (k > 0) {
      computeOpened();
      scrollShift += topOf(k);
      for (let i = 0; i < k; i++) if (!view[i].notice) viewLines--;
      view = view.slice(k);
    }
    for (const e of expanded) if (before(e, first)) expanded.delete(e);
  }

  function rebuildView() {
    if (!follow && view.length) {
      computeOpened();
      const i = Math.min(view.length - 1, Math.max(0, indexAt(ui.log.scrollTop)));
      scrollTo = view[i];
    }
    view = wholeView() ? buildWholeView() : records.filter(matches);
    viewLines = 0;
    for (const e of view) if (!e.notice) viewLines += folded.get(e) || 1;
    newSinceFollow = 0;
  }

  const CONTEXT = 3; // lines shown before and after each match in context mode
  const contextOf = new Set(); // entries in view only as context of a match
  const folded = new Map(); // first entry of a folded run -> how many lines it stands for
  const foldRuns = new Map(); // first entry of a folded run -> the entries of the run

  // wholeView: whether the view depends on neighbouring lines, and so is
  // built whole from the records.
  const wholeView = () => (st.ctx && !!matchRe) || st.fold;

  // buildWholeView is the view with context lines around matches, and runs
  // of lines alike but for their numbers folded into one counted row.
  function buildWholeView() {
    contextOf.clear();
    folded.clear();
    foldRuns.clear();
    let out;
    if (st.ctx && matchRe) {
      out = [];
      let after = 0; // context lines still owed after the last match
      let lastOut = -1; // index in records of the last entry put out
      for (let i = 0; i < records.length; i++) {
        const e = records[i];
        if (matchesCached(e)) {
          for (let j = Math.max(lastOut + 1, i - CONTEXT); j < i; j++) {
            if (records[j].notice) continue;
            out.push(records[j]);
            contextOf.add(records[j]);
          }
          out.push(e);
          lastOut = i;
          after = CONTEXT;
        } else if (after > 0 && !e.notice) {
          out.push(e);
          contextOf.add(e);
          lastOut = i;
          after--;
        }
      }
    } else {
      out = records.filter(matchesCached);
    }
    if (!st.fold) return out;
    const view2 = [];
    for (let i = 0; i < out.length; ) {
      const e = out[i];
      let j = i + 1;
      if (!e.notice) {
        const shape = shapeOf(e);
        while (j < out.length && !out[j].notice && out[j].ch === e.ch && shapeOf(out[j]) === shape) j++;
      }
      view2.push(e);
      if (j - i > 1) {
        folded.set(e, j - i);
        foldRuns.set(e, out.slice(i, j));
      }
      i = j;
    }
    return view2;
  }

  // shapeOf is a line's message with its numbers, hex and IDs blanked:
  // lines of one shape differ only in those.
  function shapeOf(e) {
    if (e.shape === undefined) e.shape = e.lvl + ' ' + e.msg.replace(/[0-9a-f]{8}-[0-9a-f-]{27}|0x[0-9a-f]+|\b[0-9a-f]{12,}\b|\d+/gi, '#');
    return e.shape;
  }

  let filterGen = 0; // bumped when what matches may change
  function matchesCached(e) {
    if (e.mg !== filterGen) {
      e.mv = matches(e);
      e.mg = filterGen;
    }
    return e.mv;
  }

  // ---- the virtual list: only rows near the viewport exist in the DOM ----

  let frame = 0; // the requested animation frame, or minus the timer of a hidden page
  let needDraw = true;
  let lastDraw = 0;
  const STREAM_DRAW_MS = 100;
  let drawGen = 0; // bumped when every row must be rebuilt (filter, time zone)
  let opened = []; // {i, extra} of expanded entries in view order
  const shown = new Map(); // entry n -> {row, gen, open, fold, ctx, y, alt}
  const rowEntry = new WeakMap(); // row element -> entry

  // queueRender asks for a render in the next frame; a hidden page draws
  // no frames, so it takes in what arrives on a timer instead, and the
  // stream keeps flowing.
  // New lines alone redraw the rows at most every STREAM_DRAW_MS: at
  // thousands of lines a second nobody reads them, and each redraw lays
  // out a screenful of new rows. Anything else (scroll, filter, click)
  // draws in the next frame.
  function queueRender(linesOnly) {
    if (linesOnly !== true) needDraw = true;
    if (frame) return;
    frame = document.hidden ? -setTimeout(render, 250) : requestAnimationFrame(render);
  }

  function computeOpened() {
    opened = [];
    for (const e of expanded) {
      const i = lowerBound(view, e);
      if (i < view.length && view[i] === e) opened.push({ i, extra: e.extra });
    }
    opened.sort((a, b) => a.i - b.i);
  }

  function topOf(i) {
    let y = i * ROW_H;
    for (const o of opened) {
      if (o.i >= i) break;
      y += o.extra;
    }
    return y;
  }

  function indexAt(y) {
    let cum = 0;
    for (const o of opened) {
      const top = o.i * ROW_H + cum;
      if (y < top) break;
      if (y < top + ROW_H + o.extra) return o.i;
      cum += o.extra;
    }
    return Math.floor((y - cum) / ROW_H);
  }

  // render takes in what arrived and draws, once per frame. Records are
  // parsed here, a frame's budget at a time, so a burst of thousands is
  // spread over frames instead of freezing the page.
  function render() {
    if (frame < 0) clearTimeout(-frame);
    else if (frame) cancelAnimationFrame(frame);
    frame = 0;
    if (incoming.length > inHead) {
      const start = performance.now();
      // The panes of the split view draw in one task of the browser's
      // frame: they share its budget.
      const budget = Math.max(2, FRAME_BUDGET_MS / (framed ? Math.max(1, window.parent.frames.length) : 1));
      const batch = [];
      let i = inHead;
      let taken = 0; // records from the stream
      while (i < incoming.length) {
        const it = incoming[i];
        incoming[i++] = null;
        if (typeof it === 'string') {
          taken++;
          const e = toEntry(it);
          if (e) batch.push(e);
        } else {
          // a notice, or a line held while paused
          if (!it.n) {
            it.n = ++seq;
            it.k = lastK;
          }
          batch.push(it);
        }
        if ((i & 15) === 0 && performance.now() - start > budget) break;
      }
      inHead = i;
      if (inHead === incoming.length) {
        incoming = [];
        inHead = 0;
      } else if (inHead > 4096 && inHead * 2 > incoming.length) {
        incoming = incoming.slice(inHead);
        inHead = 0;
      }
      if (taken && worker) worker.postMessage(taken); // the stream may read on
      if (incoming.length > inHead) queueRender(true);
      if (paused) {
        pending = pending.concat(batch);
        if (pending.length > CAP) {
          pendingLost += pending.length - CAP;
          pending = pending.slice(-CAP);
        }
      } else {
        absorb(batch);
        if (selPending) openSelected(batch);
      }
    }
    const now = performance.now();
    if (needDraw || now - lastDraw >= STREAM_DRAW_MS) {
      needDraw = false;
      lastDraw = now;
      draw();
      updateStatus();
    } else queueRender(true); // the new lines, a little later
  }

  function draw() {
    const log = ui.log;
    computeOpened();
    let total = view.length * ROW_H;
    for (const o of opened) total += o.extra;
    // Read the layout before writing to it: one layout per frame, not one
    // per read after a write.
    const vh = log.clientHeight;
    const top0 = log.scrollTop;
    ui.spacer.style.height = total + 'px';
    let top = top0;
    if (scrollTo !== null) {
      top = topOf(lowerBound(view, scrollTo));
      scrollTo = null;
      scrollShift = 0;
    } else if (scrollShift) {
      if (!follow) top = Math.max(0, top0 - scrollShift);
      scrollShift = 0;
    }
    if (follow) top = Math.max(0, total - vh);
    if (top !== top0) {
      log.scrollTop = top;
      top = log.scrollTop; // as the browser clamped it
    }
    const first = Math.max(0, indexAt(top) - OVERSCAN);
    const last = Math.min(view.length - 1, indexAt(top + vh) + OVERSCAN);
    const keep = new Set();
    for (let i = first; i <= last; i++) {
      const e = view[i];
      const open = expanded.has(e);
      // A run grows and a line becomes another's context as lines arrive.
      const fold = folded.get(e) || 0;
      const ctx = contextOf.has(e);
      let s = shown.get(e.n);
      if (!s || s.gen !== drawGen || s.open !== open || s.fold !== fold || s.ctx !== ctx) {
        if (s) s.row.remove();
        s = { row: buildRow(e, open), gen: drawGen, open, fold, ctx, y: -1, alt: false };
        shown.set(e.n, s);
        log.appendChild(s.row);
      }
      const y = topOf(i);
      if (s.y !== y) {
        s.row.style.transform = 'translateY(' + y + 'px)';
        s.y = y;
      }
      const alt = (i & 1) === 1;
      if (s.alt !== alt) {
        s.row.classList.toggle('alt', alt);
        s.alt = alt;
      }
      keep.add(e.n);
    }
    for (const [n, s] of shown) {
      if (!keep.has(n)) {
        s.row.remove();
        shown.delete(n);
      }
    }
    ui.empty.hidden = view.length > 0;
    if (!view.length) {
      ui.empty.textContent = records.length
        ? 'No lines match the filter.'
        : paused && pending.length
          ? 'Paused.'
          : 'Waiting for log lines on ' + st.channels.join(', ') + '\u2026';
    }
  }

  // cell is a span holding text, with the filter's matches wrapped in <mark>
  // elements; every piece is a text node.
  function cell(cls, text) {
    return marked('span', cls, text);
  }

  // marked makes an element holding text with the filter's matches marked.
  function marked(tag, cls, text) {
    const s = el(tag, cls);
    if (!markRe || !text) {
      s.textContent = text;
      return s;
    }
    markRe.lastIndex = 0;
    let at = 0;
    let marks = 0;
    let m;
    while (marks < MARK_MAX && (m = markRe.exec(text)) !== null) {
      if (m[0] === '') {
        markRe.lastIndex++;
        continue;
      }
      if (m.index > at) s.append(text.slice(at, m.index));
      s.append(el('mark', null, m[0]));
      at = m.index + m[0].length;
      marks++;
    }
    if (at < text.length) s.append(text.slice(at));
    return s;
  }

  // Rows come in time order: their date and time down to the second are
  // worked out once a second, not once a row (local time is slow to ask).
  let secOf = NaN; // the second cached, negative in UTC
  let secTime = ''; // its "hh:mm:ss"
  let secDate = ''; // its "yyyy-mm-dd"

  // cacheSecond returns the milliseconds of t after its second, having cached
  // that second's time and date.
  function cacheSecond(t) {
    const ms = Math.round(t * 1000);
    const sec = Math.floor(ms / 1000);
    const key = st.utc ? -sec - 1 : sec;
    if (key !== secOf) {
      const d = new Date(sec * 1000);
      if (st.utc) {
        secTime = pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes()) + ':' + pad2(d.getUTCSeconds());
        secDate = d.getUTCFullYear() + '-' + pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
      } else {
        secTime = pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' + pad2(d.getSeconds());
        secDate = d.getFullYear() + '-' + pad2(d.getMonth() + 1) + '-' + pad2(d.getDate());
      }
      secOf = key;
    }
    return ms - sec * 1000;
  }

  function fmtTime(t) {
    if (!t) return '';
    const ms = cacheSecond(t);
    return secTime + '.' + pad3(ms);
  }

  // The time zone's name, asked once: a DateTimeFormat costs a millisecond
  // to make, and every row's time has this title.
  const TZ = Intl.DateTimeFormat().resolvedOptions().timeZone;

  function fullTime(t) {
    if (!t) return 'no timestamp';
    const ms = cacheSecond(t);
    return secDate + ' ' + secTime + '.' + pad3(ms) + ' ' + (st.utc ? 'UTC' : TZ);
  }

  // ---- highlight rules: text or /regex/ -> colour, kept in this browser ----

  const HL_KEY = 'logviewer.highlight';
  let hlRules = []; // {pattern, color, re}

  function loadHighlights() {
    let saved = [];
    try {
      saved = JSON.parse(localStorage.getItem(HL_KEY) || '[]');
    } catch {
      saved = [];
    }
    hlRules = [];
    for (const r of Array.isArray(saved) ? saved : []) {
      if (r && typeof r.pattern === 'string' && /^#[0-9a-f]{6}$/i.test(r.color)) addHighlight(r.pattern, r.color, false);
    }
  }

  function saveHighlights() {
    try {
      localStorage.setItem(HL_KEY, JSON.stringify(hlRules.map((r) => ({ pattern: r.pattern, color: r.color }))));
    } catch {
      // storage full or off: the rules last for this page
    }
  }

  function addHighlight(pattern, color, save) {
    const m = /^\/(.+)\/$/s.exec(pattern);
    let re;
    try {
      re = m ? new RegExp(m[1], 'i') : new RegExp(escapeRe(pattern), 'i');
    } catch {
      return false;
    }
    hlRules.push({ pattern, color, re });
    if (save) {
      saveHighlights();
      drawHighlightRules();
      drawGen++;
      queueRender();
    }
    return true;
  }

  function drawHighlightRules() {
    const ul = $('hlrules');
    ul.textContent = '';
    hlRules.forEach((r, i) => {
      const li = el('li', 'hlrule');
      const sw = el('span', 'hlswatch');
      sw.style.background = r.color;
      const rm = el('button', 'icon', '\u00d7');
      rm.type = 'button';
      rm.title = 'Remove this rule';
      rm.addEventListener('click', () => {
        hlRules.splice(i, 1);
        saveHighlights();
        drawHighlightRules();
        drawGen++;
        queueRender();
      });
      li.append(sw, el('span', 'hlpat', r.pattern), rm);
      ul.append(li);
    });
  }

  function highlightOf(e) {
    for (const r of hlRules) if (r.re.test(e.msg)) return r.color;
    return '';
  }

  function buildRow(e, open) {
    const r = el('div', 'row');
    if (e.notice) {
      r.className = 'row notice ' + e.notice;
      r.textContent = e.text;
      return r;
    }
    if (contextOf.has(e)) r.classList.add('ctx');
    if (e === cursorEntry) r.classList.add('cursor');
    const hl = highlightOf(e);
    if (hl) {
      r.classList.add('hl');
      r.style.setProperty('--hl', hl); // CSSOM: allowed by the policy, unlike inline style attributes
    }
    if (e.lvl >= 0) r.classList.add('lvl-' + e.lvl);
    if (e.id) r.dataset.id = e.id;
    const head = el('div', 'head');
    const time = el('span', 'c-time', fmtTime(e.t));
    time.title = fullTime(e.t);
    const more = moreLines(e);
    const obj = jsonOf(e);
    let first = more ? e.msg.slice(0, e.msg.indexOf('\n')).replace(/\r$/, '') : e.msg;
    if (first.length > MSG_MAX) first = first.slice(0, MSG_MAX) + '\u2026';
    let msgCell;
    if (obj) {
      // A JSON message: its members as key=value chips; a click filters by one.
      msgCell = el('span', 'c-msg');
      let n = 0;
      for (const [k, v] of Object.entries(obj)) {
        if (n++ === CHIPS_MAX) {
          msgCell.append(el('span', 'chip more', '+' + (Object.keys(obj).length - CHIPS_MAX)));
          break;
        }
        let val = str(v);
        if (val.length > CHIP_MAX) val = val.slice(0, CHIP_MAX) + '\u2026';
        const chip = marked('span', 'chip', k + '=' + val);
        chip.dataset.k = k;
        chip.dataset.v = str(v);
        chip.title = 'Filter by ' + k + ':' + str(v);
        msgCell.append(chip);
      }
    } else {
      msgCell = cell('c-msg', first);
    }
    if (more) {
      // A multi-line record (a traceback): its first line, and how many follow.
      const badge = el('span', 'more', '+' + nf.format(more) + (more === 1 ? ' line' : ' lines'));
      badge.title = 'Click the line to show the whole message';
      msgCell.prepend(badge, ' ');
    }
    const n = folded.get(e);
    if (n) {
      const badge = el('span', 'fold', '\u00d7' + nf.format(n));
      badge.title = nf.format(n) + ' lines alike but for their numbers; unfold them with the Fold button';
      msgCell.prepend(badge, ' ');
    }
    head.append(time, cell('c-ch', e.ch), cell('c-app', e.app), el('span', 'c-lvl', e.lvl >= 0 ? LEVELS[e.lvl] : ''), msgCell);
    r.append(head);
    if (open) {
      r.classList.add('open');
      let h = e.extra - REC_GAP;
      if (more || obj) {
        const text = obj ? JSON.stringify(obj, null, 2) : e.msg;
        const whole = marked('pre', 'rec msgfull', text);
        const mh = (msgLines(e) + 1) * REC_LINE_H + REC_PAD;
        whole.style.height = mh + 'px';
        r.append(whole);
        h -= mh + REC_GAP;
      }
      const pre = el('pre', 'rec', e.pretty);
      pre.style.height = h + 'px';
      r.append(pre);
      r.style.height = ROW_H + e.extra + 'px';
    }
    rowEntry.set(r, e);
    return r;
  }

  // moreLines is how many lines a record's message has after its first
  // (counted once per record).
  function moreLines(e) {
    if (e.more === undefined) {
      let n = 0;
      for (let i = e.msg.indexOf('\n'); i >= 0; i = e.msg.indexOf('\n', i + 1)) n++;
      if (n && e.msg.endsWith('\n')) n--;
      e.more = n;
    }
    return e.more;
  }

  // jsonOf returns the object a record's message holds as JSON, or null
  // (decided once per record).
  function jsonOf(e) {
    if (e.obj === undefined) {
      e.obj = null;
      const m = e.msg.trim();
      if (m.length > 1 && m[0] === '{' && m[m.length - 1] === '}') {
        try {
          const o = JSON.parse(m);
          if (o && typeof o === 'object' && !Array.isArray(o) && Object.keys(o).length) e.obj = o;
        } catch {
          // not JSON after all: a plain message
        }
      }
    }
    return e.obj;
  }

  // msgLines is how many lines after the first the expanded message takes.
  function msgLines(e) {
    const o = jsonOf(e);
    if (!o) return moreLines(e);
    const text = JSON.stringify(o, null, 2);
    let n = 0;
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) n++;
    return n;
  }

  // addFilterTerm adds field:value to the filter box, quoted as needed.
  function addFilterTerm(k, v) {
    const quote = (s) => (/^[^\s"]+$/.test(s) ? s : '"' + s.replace(/"/g, '') + '"');
    const term = (isFieldKey(k) ? k : quote(k)) + ':' + quote(v);
    st.q = st.q ? st.q + ' ' + term : term;
    syncControls();
    applyFilter();
  }

  const isFieldKey = (k) => /^[A-Za-z0-9_.-]+$/.test(k);

  // openSelected expands and scrolls to the line the address names, once it
  // has arrived.
  function openSelected(batch) {
    const e = batch.find((x) => x.id === selPending);
    if (!e) return;
    selPending = '';
    if (!expanded.has(e)) toggleExpand(e);
    setFollow(false);
    if (view.includes(e)) scrollTo = e;
  }

  function toggleExpand(e) {
    if (expanded.has(e)) {
      expanded.delete(e);
      e.pretty = undefined;
      if (st.sel === e.id) st.sel = '';
    } else {
      if (e.id) st.sel = e.id; // the address names the line: a link opens it
      let pretty;
      try {
        pretty = JSON.stringify(JSON.parse(e.raw), null, 2);
      } catch {
        pretty = e.raw;
      }
      e.pretty = pretty;
      let lines = 1;
      for (let i = 0; i < pretty.length; i++) if (pretty.charCodeAt(i) === 10) lines++;
      e.extra = lines * REC_LINE_H + REC_PAD + REC_GAP;
      if (moreLines(e) || jsonOf(e)) e.extra += (msgLines(e) + 1) * REC_LINE_H + REC_PAD + REC_GAP; // the whole message, preformatted
      expanded.add(e);
      setFollow(false); // the user is reading this line: keep it in place
    }
    writeHash();
    queueRender();
  }

  function updateStatus() {
    const parts = [nf.format(records.length - recordNotices) + ' lines', nf.format(viewLines) + ' shown'];
    if (droppedTotal) parts.push(nf.format(droppedTotal) + ' dropped by the server');
    if (paused) parts.push(nf.format(pending.length) + ' waiting');
    ui.stats.textContent = parts.join(' \u00b7 ');
    ui.viewing.textContent = 'channels: ' + st.channels.join(', ');
    ui.pause.textContent = paused ? 'Resume (' + nf.format(pending.length + pendingLost) + ' waiting)' : 'Pause';
    ui.pause.classList.toggle('waiting', paused);
    ui.pause.setAttribute('aria-pressed', String(paused));
    ui.jump.textContent = newSinceFollow ? '\u2193 ' + nf.format(newSinceFollow) + ' new lines' : '\u2193 Follow new lines';
  }

  // ---- follow, pause, clear, download ----

  function setFollow(f) {
    if (follow === f) return;
    follow = f;
    if (f) followSince = performance.now();
    newSinceFollow = 0;
    ui.follow.setAttribute('aria-pressed', String(f));
    ui.jump.hidden = f;
    queueRender();
  }

  function setPaused(p) {
    if (paused === p) return;
    paused = p;
    if (!p) {
      const batch = pending;
      pending = [];
      if (pendingLost) {
        batch.unshift(notice('dropped', nf.format(pendingLost) + ' lines discarded while paused (more than ' + nf.format(CAP) + ' were waiting)'));
        pendingLost = 0;
      }
      incoming = batch.concat(incoming.slice(inHead));
      inHead = 0;
    }
    queueRender();
  }

  // clearLines removes every line and notice (the Clear button).
  function clearLines() {
    dropLines();
    records = [];
    recordNotices = 0;
    droppedTotal = 0;
    dropsBy.clear();
    gapsBy.clear();
    gapsAll = 0;
    rebuildView();
    queueRender();
  }

  // dropLines removes the lines, taken in or waiting, and keeps the
  // notices: where lines were dropped or missing stays marked, between the
  // lines of the next stream.
  function dropLines() {
    let untaken = 0;
    for (let i = inHead; i < incoming.length; i++) if (typeof incoming[i] === 'string') untaken++;
    if (untaken && worker) worker.postMessage(untaken); // discarded counts as taken: the stream reads on
    records = records.filter((e) => e.notice);
    recordNotices = records.length;
    incoming = [];
    inHead = 0;
    pending = [];
    pendingLost = 0;
    expanded.clear();
    newSinceFollow = 0;
    setFollow(true);
  }

  // resetAll makes way for a new stream, with its own backfill.
  function resetAll() {
    dropLines();
    hwm.clear();
    seenIds.clear();
    rebuildView();
    queueRender();
  }

  function download() {
    const lines = [];
    for (const e of view) {
      if (e.notice) continue;
      for (const x of foldRuns.get(e) || [e]) lines.push(x.raw); // folded lines stay downloadable
    }
    const blob = new Blob([lines.length ? lines.join('\n') + '\n' : ''], { type: 'application/x-ndjson' });
    const url = URL.createObjectURL(blob);
    const d = new Date();
    const stamp = d.getFullYear() + pad2(d.getMonth() + 1) + pad2(d.getDate()) + '-' + pad2(d.getHours()) + pad2(d.getMinutes()) + pad2(d.getSeconds());
    const name = st.channels.join('+').replace(/[^A-Za-z0-9._-]+/g, '_') || 'all';
    const a = el('a');
    a.href = url;
    a.download = 'logviewer-' + name + '-' + stamp + '.ndjson';
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
  }

  // ---- the stream: one, for every channel pattern picked, read by a worker ----

  let worker = null; // the stream's reader (stream.js)
  let streamUrl = ''; // what it reads
  let connState = 'idle';

  // serverQuery is the filter the server applies: the box's text, unless
  // context is on (context lines are the ones that do not match) or the
  // text does not parse (the stream stays as it was).
  function serverQuery() {
    return st.q && !st.ctx ? st.q : '';
  }

  // wantUrl is the stream the view asks for: its channels, the severity
  // and the filter, all applied by the server, so only the lines shown
  // cross the wire.
  function wantUrl() {
    const pattern = isAll(st.channels) ? '*' : st.channels.join(',');
    let q = 'tail=' + TAIL;
    if (st.lvl < 7) q += '&level=' + st.lvl;
    const sq = serverQuery();
    if (sq) q += '&q=' + encodeURIComponent(sq) + (st.cs ? '&cs=1' : '');
    return 'sse/' + encodeURIComponent(pattern) + '?' + q;
  }

  // ensureStream opens the stream the view asks for, with its own backfill,
  // unless it is open already.
  function ensureStream() {
    if (ui.filter.classList.contains('invalid') && worker) return; // keep what is shown until the filter parses
    if (wantUrl() === streamUrl && worker) return;
    resetAll();
    subscribe();
  }

  // subscribe opens the stream the view asks for, resuming after the event
  // ID from when given (else with its backfill).
  function subscribe(from) {
    if (worker) worker.terminate();
    streamUrl = wantUrl();
    selPending = st.sel; // the line the address names, once it comes again
    const w = new Worker('stream.js');
    worker = w;
    connState = 'connecting';
    w.onmessage = (ev) => {
      if (w !== worker) return;
      const m = ev.data;
      if (m.batch) {
        for (const it of m.batch) {
          if (typeof it === 'string') incoming.push(it);
          else if (it.event === 'dropped') onDropped(it.data);
          else if (it.event === 'gap') onGap(it.data);
        }
        queueRender(true);
      } else if (m.state) {
        connState = m.state;
        updateConn();
      }
    };
    w.onerror = () => {
      if (w !== worker) return;
      connState = 'reconnecting';
      updateConn();
    };
    w.postMessage({ url: new URL(streamUrl, location.href).href, since: from || '' });
    updateConn();
  }

  // stopStream ends the stream (the history search shows its own lines).
  function stopStream() {
    if (worker) worker.terminate();
    worker = null;
    streamUrl = '';
    connState = 'idle';
    updateConn();
  }

  function onDropped(data) {
    let n = 0;
    const by = new Map();
    try {
      const d = JSON.parse(data);
      n = Number(d.dropped) || 0;
      if (d.channels && typeof d.channels === 'object') {
        for (const [ch, k] of Object.entries(d.channels)) if (Number(k) > 0) by.set(ch, Number(k));
      }
    } catch {
      return;
    }
    droppedTotal += n;
    // Which channels lost lines: the channel list says so per channel.
    for (const [ch, k] of by) if (ch) dropsBy.set(ch, (dropsBy.get(ch) || 0) + k);
    pushDropped(n, by);
  }

  // onGap marks where lines may be missing, and of which channels when the
  // server says (else every channel in view).
  function onGap(data) {
    let chs = [];
    try {
      const d = JSON.parse(data);
      if (Array.isArray(d.channels)) chs = d.channels.filter((c) => typeof c === 'string' && c);
    } catch {
      // a gap all the same
    }
    const of = chs.length ? ' of ' + chs.slice(0, 8).join(', ') + (chs.length > 8 ? ', \u2026' : '') : '';
    const e = notice('gap', 'Gap: the server restarted or no longer holds the lines' + of +
      ' after the last one shown; some lines may be missing here.');
    e.chs = chs;
    if (chs.length) for (const ch of chs) gapsBy.set(ch, (gapsBy.get(ch) || 0) + 1);
    else gapsAll++;
    push(e);
  }

  function updateConn() {
    ui.conn.dataset.state = connState;
    ui.conn.textContent = { live: 'live', connecting: 'connecting\u2026', reconnecting: 'reconnecting\u2026', idle: 'idle' }[connState];
  }

  // globToRegExp turns channel globs into one RegExp with the server's rules
  // (Redis PSUBSCRIBE): '*', '?', sets with ranges (a reversed range means
  // the same), '^' or '!' to negate, '\\' to quote.
  function globToRegExp(globs) {
    const cls = (c) => '\\x' + c.charCodeAt(0).toString(16).padStart(2, '0');
    const parts = globs.map((g) => {
      let s = '';
      for (let i = 0; i < g.length; i++) {
        const c = g[i];
        if (c === '*') s += '.*';
        else if (c === '?') s += '.';
        else if (c === '\\' && i + 1 < g.length) s += escapeRe(g[++i]);
        else if (c === '[') {
          let j = i + 1;
          let neg = false;
          if (g[j] === '^' || g[j] === '!') {
            neg = true;
            j++;
          }
          let set = '';
          while (j < g.length && g[j] !== ']') {
            let lo = g[j];
            if (lo === '\\' && j + 1 < g.length) lo = g[++j];
            j++;
            let hi = lo;
            if (j + 1 < g.length && g[j] === '-' && g[j + 1] !== ']') {
              hi = g[j + 1];
              j += 2;
              if (hi === '\\' && j < g.length) hi = g[j++];
              if (lo > hi) [lo, hi] = [hi, lo];
            }
            set += lo === hi ? cls(lo) : cls(lo) + '-' + cls(hi);
          }
          s += set ? '[' + (neg ? '^' : '') + set + ']' : neg ? '[^]' : '[]';
          i = j; // at the ']' (or the end: an unterminated set ends with the pattern)
        } else s += escapeRe(c);
      }
      return s;
    });
    try {
      return new RegExp('^(?:' + parts.join('|') + ')$', 's');
    } catch {
      return /^$/;
    }
  }


  // ---- channel list, polled ----

  const chanRows = new Map(); // channel name -> sidebar row
  let allRow = null;

  function spark() {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('viewBox', '0 0 ' + (SPARK_N - 1) + ' 20');
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('aria-hidden', 'true');
    const area = document.createElementNS(SVG_NS, 'polygon');
    area.setAttribute('class', 'area');
    const line = document.createElementNS(SVG_NS, 'polyline');
    line.setAttribute('class', 'line');
    svg.append(area, line);
    return { svg, area, line };
  }

  function drawSpark(sp, hist) {
    if (hist.length < 2) return;
    let max = 1;
    for (const v of hist) if (v > max) max = v;
    const off = SPARK_N - hist.length;
    let pts = '';
    for (let i = 0; i < hist.length; i++) pts += off + i + ',' + (19 - (hist[i] / max) * 17).toFixed(1) + ' ';
    sp.line.setAttribute('points', pts);
    sp.area.setAttribute('points', off + ',20 ' + pts + (SPARK_N - 1) + ',20');
  }

  function chanRow(name) {
    const all = name === '*';
    const li = el('li', all ? 'chan all' : 'chan');
    li.dataset.channel = name;
    const box = el('input');
    box.type = 'checkbox';
    box.title = all ? 'All channels' : 'Add ' + name + ' to the channels shown, or remove it';
    box.setAttribute('aria-label', all ? 'All channels' : 'Select ' + name);
    const nm = el('button', 'name', all ? 'All channels' : name);
    nm.type = 'button';
    nm.title = all ? 'Show every channel (*)' : 'Show only ' + name;
    const rate = el('span', 'rate');
    const meta = el('span', 'meta');
    const sp = spark();
    li.append(box, nm, rate, meta, sp.svg);
    box.addEventListener('change', () => (all ? selectChannels(['*']) : toggleChannel(name)));
    nm.addEventListener('click', () => selectChannels([name]));
    return { li, box, rate, meta, sp, hist: [] };
  }

  function fmtRate(r) {
    if (!(r > 0)) return '0/s';
    if (r < 10) return r.toFixed(1) + '/s';
    if (r < 1000) return Math.round(r) + '/s';
    return (r / 1000).toFixed(1) + 'k/s';
  }

  function fmtCount(n) {
    if (n >= 1e6) return (n / 1e6).toFixed(1) + 'M';
    if (n >= 1e5) return Math.round(n / 1e3) + 'k';
    return nf.format(n);
  }

  function parseWhen(v) {
    if (typeof v === 'number') return v > 1e12 ? v : v * 1000;
    if (typeof v === 'string' && v) {
      const t = Date.parse(v);
      if (!Number.isNaN(t)) return t;
      const x = Number(v);
      if (x) return x > 1e12 ? x : x * 1000;
    }
    return 0;
  }

  function ago(ms) {
    if (!ms) return '';
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 5) return 'now';
    if (s < 90) return Math.round(s) + 's ago';
    if (s < 5400) return Math.round(s / 60) + 'm ago';
    if (s < 129600) return Math.round(s / 3600) + 'h ago';
    return Math.round(s / 86400) + 'd ago';
  }

  function feed(row, rate, count, lastMs, name) {
    row.hist.push(rate);
    if (row.hist.length > SPARK_N) row.hist.shift();
    row.rate.textContent = fmtRate(rate);
    const when = ago(lastMs);
    const lost = name === undefined ? 0 : dropsBy.get(name) || 0;
    const gaps = name === undefined ? 0 : (gapsBy.get(name) || 0) + (gapsAll && shownChannel(name) ? gapsAll : 0);
    row.meta.textContent = fmtCount(count) + ' lines' + (when ? ' \u00b7 ' + when : '') +
      (lost ? ' \u00b7 ' + fmtCount(lost) + ' dropped' : '') + (gaps ? ' \u00b7 ' + nf.format(gaps) + (gaps === 1 ? ' gap' : ' gaps') : '');
    row.meta.classList.toggle('lossy', lost > 0 || gaps > 0);
    row.meta.classList.toggle('stale', lastMs > 0 && Date.now() - lastMs > 60000);
    drawSpark(row.sp, row.hist);
  }

  function updateChannels(list) {
    if (!allRow) {
      allRow = chanRow('*');
      ui.channels.append(allRow.li);
    }
    const names = new Set();
    let rate = 0;
    let count = 0;
    let last = 0;
    const sorted = list
      .filter((c) => c && typeof c.name === 'string' && c.name)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    let prev = allRow.li;
    for (const c of sorted) {
      names.add(c.name);
      let row = chanRows.get(c.name);
      if (!row) {
        row = chanRow(c.name);
        chanRows.set(c.name, row);
      }
      if (prev.nextSibling !== row.li) prev.after(row.li);
      prev = row.li;
      const r = Number(c.rate) || 0;
      const n = Number(c.count) || 0;
      const when = parseWhen(c.last_seen);
      feed(row, r, n, when, c.name);
      rate += r;
      count += n;
      if (when > last) last = when;
    }
    for (const [name, row] of chanRows) {
      if (!names.has(name)) {
        row.li.remove();
        chanRows.delete(name);
      }
    }
    feed(allRow, rate, count, last);
    allRow.meta.textContent = sorted.length + (sorted.length === 1 ? ' channel' : ' channels') + ' \u00b7 ' + fmtCount(count);
    markSelection();
  }

  function markSelection() {
    const re = isAll(st.channels) ? null : globToRegExp(st.channels);
    if (allRow) {
      allRow.box.checked = !re;
      allRow.li.classList.toggle('sel', !re);
    }
    for (const [name, row] of chanRows) {
      const sel = !!re && re.test(name);
      row.box.checked = sel;
      row.li.classList.toggle('sel', sel);
    }
    const globs = st.channels.filter((c) => /[*?[]/.test(c) && c !== '*');
    if (document.activeElement !== ui.glob) ui.glob.value = globs.join(', ');
  }

  async function pollChannels() {
    try {
      if (!document.hidden || !allRow) {
        const resp = await fetch('api/channels', { cache: 'no-store', headers: { Accept: 'application/json' } });
        if (!resp.ok) throw new Error('HTTP ' + resp.status);
        const body = await resp.json();
        const list = Array.isArray(body.channels) ? body.channels : [];
        updateChannels(list);
        updateLag(list);
        ui.chanState.textContent = '';
        ui.chanState.classList.remove('bad');
      }
    } catch (err) {
      ui.chanState.textContent = 'Channel list unavailable: ' + String(err && err.message);
      ui.chanState.classList.add('bad');
    } finally {
      setTimeout(pollChannels, POLL_MS);
    }
  }

  // updateLag says how far the newest line shown is behind the newest
  // record the server has of the channels in view (its reception times).
  function updateLag(list) {
    const re = isAll(st.channels) ? null : globToRegExp(st.channels);
    let serverNewest = 0;
    for (const c of list) {
      if (re && !re.test(c.name)) continue;
      const t = Date.parse(c.last_seen);
      if (t > serverNewest) serverNewest = t;
    }
    let shownNewest = 0;
    for (let i = records.length - 1; i >= 0 && !shownNewest; i--) if (!records[i].notice) shownNewest = records[i].t * 1000;
    const behind = shownNewest && serverNewest ? Math.floor((serverNewest - shownNewest) / 1000) : 0;
    const lag = $('lag');
    lag.hidden = behind < 2;
    lag.textContent = behind >= 2 ? nf.format(behind) + ' s behind' : '';
    lag.title = paused ? 'Paused: the newest lines wait' : 'The newest line shown is older than the newest the server has';
  }

  function selectChannels(list) {
    const clean = [...new Set(list.map((c) => c.trim()).filter(Boolean))];
    st.channels = clean.length && !clean.includes('*') ? clean : ['*'];
    writeHash();
    ensureStream();
    markSelection();
  }

  // shownChannel reports whether the channel is among those in view.
  function shownChannel(name) {
    return isAll(st.channels) || globToRegExp(st.channels).test(name);
  }

  function toggleChannel(name) {
    let list = st.channels.filter((c) => c !== '*');
    list = list.includes(name) ? list.filter((c) => c !== name) : list.concat(name);
    selectChannels(list.length ? list : ['*']);
  }

  // ---- controls ----

  function applyFilter() {
    filterGen++;
    compileFilter();
    ensureStream(); // the server filters too: a new filter is a new stream
    rebuildView();
    drawGen++;
    writeHash();
    queueRender();
  }

  // toggleMode turns context lines (ctx) or folding of alike lines (fold)
  // on or off.
  function toggleMode(mode) {
    st[mode] = !st[mode];
    syncControls();
    ensureStream(); // context needs the lines around the matches
    rebuildView();
    drawGen++;
    writeHash();
    queueRender();
  }

  function syncControls() {
    $('ctx').setAttribute('aria-pressed', String(st.ctx));
    $('fold').setAttribute('aria-pressed', String(st.fold));
    ui.filter.value = st.q;
    ui.caseBtn.setAttribute('aria-pressed', String(st.cs));
    ui.level.value = String(st.lvl);
    ui.utc.setAttribute('aria-pressed', String(st.utc));
    ui.timeHead.textContent = st.utc ? 'Time (UTC)' : 'Time';
  }

  let filterTimer = 0;

  function wire() {
    ui.filter.addEventListener('input', () => {
      clearTimeout(filterTimer);
      filterTimer = setTimeout(() => {
        if (st.q === ui.filter.value) return;
        st.q = ui.filter.value;
        applyFilter();
      }, 120);
    });
    ui.caseBtn.addEventListener('click', () => {
      st.cs = !st.cs;
      syncControls();
      applyFilter();
    });
    ui.level.addEventListener('change', () => {
      st.lvl = Number(ui.level.value);
      applyFilter(); // a new stream: the server sends only these severities
    });
    ui.utc.addEventListener('click', () => {
      st.utc = !st.utc;
      syncControls();
      drawGen++;
      writeHash();
      queueRender();
    });
    $('ctx').addEventListener('click', () => toggleMode('ctx'));
    $('fold').addEventListener('click', () => toggleMode('fold'));
    ui.pause.addEventListener('click', () => setPaused(!paused));
    ui.follow.addEventListener('click', () => setFollow(!follow));
    ui.jump.addEventListener('click', () => setFollow(true));
    ui.clear.addEventListener('click', clearLines);
    ui.download.addEventListener('click', download);
    ui.sideToggle.addEventListener('click', () => document.body.classList.toggle('side-closed'));
    ui.globForm.addEventListener('submit', (ev) => {
      ev.preventDefault();
      selectChannels(ui.glob.value.split(/[\s,]+/));
      ui.glob.blur();
    });
    // A mouse click leaves focus on the button; Space must not press it again.
    for (const b of document.querySelectorAll('.bar button')) {
      b.addEventListener('click', (ev) => {
        if (ev.detail > 0) b.blur();
      });
    }

    const log = ui.log;
    let lastTop = 0;
    log.addEventListener(
      'scroll',
      () => {
        const top = log.scrollTop;
        const atBottom = top + log.clientHeight >= log.scrollHeight - ROW_H / 2;
        // Scrolling up stops following (a scrollbar drag, say); the tail of
        // a smooth scroll started before End or the button is not the user.
        if (follow && top < lastTop - 1 && !atBottom && performance.now() - followSince > 600) setFollow(false);
        else if (!follow && atBottom && top > lastTop) setFollow(true);
        lastTop = top;
        queueRender();
      },
      { passive: true },
    );
    log.addEventListener(
      'wheel',
      (ev) => {
        if (ev.deltaY < 0 && follow && log.scrollHeight > log.clientHeight) setFollow(false);
      },
      { passive: true },
    );
    log.addEventListener('click', (ev) => {
      if (framed && ev.target.closest('.c-time')) {
        // In the split view a line's time is the shared cursor: every other
        // pane shows this moment.
        const e = rowEntry.get(ev.target.closest('.row'));
        if (e && e.t) {
          showCursor(e);
          window.parent.postMessage({ type: 'logviewer-cursor', t: e.t }, location.origin);
        }
        return;
      }
      const chip = ev.target.closest('.chip[data-k]');
      if (chip) {
        addFilterTerm(chip.dataset.k, chip.dataset.v);
        return;
      }
      const head = ev.target.closest('.head');
      if (!head) return;
      const sel = window.getSelection();
      if (sel && !sel.isCollapsed && log.contains(sel.anchorNode)) return; // selecting text, not clicking
      const e = rowEntry.get(head.parentElement);
      if (e) toggleExpand(e);
    });
    window.addEventListener('resize', queueRender);
    window.addEventListener('hashchange', () => {
      Object.assign(st, readHash());
      syncControls();
      applyFilter();
      markSelection();
    });

    document.addEventListener('keydown', (ev) => {
      const t = ev.target;
      const typing = t instanceof HTMLElement && t.matches('input, select, textarea');
      if (ev.key === 'Escape') {
        if (t === ui.filter) {
          if (ui.filter.value) {
            ui.filter.value = '';
            st.q = '';
            applyFilter();
          } else ui.filter.blur();
        } else if (typing) {
          t.blur();
        } else if (expanded.size) {
          expanded.clear();
          queueRender();
        } else if (st.q) {
          ui.filter.value = '';
          st.q = '';
          applyFilter();
        }
        return;
      }
      if (typing || ev.ctrlKey || ev.metaKey || ev.altKey) return;
      if (ev.key === '/') {
        ev.preventDefault();
        ui.filter.focus();
        ui.filter.select();
      } else if (ev.key === ' ' && !(t instanceof HTMLButtonElement)) {
        ev.preventDefault();
        setPaused(!paused);
      } else if (ev.key === 'c' || ev.key === 'C') {
        toggleMode('ctx');
      } else if (ev.key === 'End') {
        ev.preventDefault();
        setFollow(true);
      } else if (ev.key === 'Home') {
        ev.preventDefault();
        setFollow(false);
        log.scrollTop = 0;
      } else if ((ev.key === 'PageUp' || ev.key === 'ArrowUp') && log.scrollHeight > log.clientHeight) {
        setFollow(false); // and let the browser scroll
      }
    });
  }

  // who: the user's name and a logout button, or the warning that nobody is
  // authenticated on a daemon others can reach.
  async function who() {
    try {
      const resp = await fetch('api/me', { cache: 'no-store', headers: { Accept: 'application/json' } });
      if (!resp.ok) return;
      const me = await resp.json();
      if (me.auth && me.user) {
        $('username').textContent = me.user;
        $('account').hidden = false;
      }
      $('noauth').hidden = !me.exposed;
    } catch (_) {
      // the badge is a courtesy: the stream says the rest
    }
  }

  function wireHighlights() {
    loadHighlights();
    drawHighlightRules();
    const btn = $('hltoggle');
    btn.addEventListener('click', () => {
      const panel = $('hlpanel');
      panel.hidden = !panel.hidden;
      btn.setAttribute('aria-expanded', String(!panel.hidden));
      if (!panel.hidden) $('hlpattern').focus();
    });
    $('hlform').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const input = $('hlpattern');
      if (addHighlight(input.value.trim(), $('hlcolor').value, true)) input.value = '';
      else input.classList.add('invalid');
    });
    $('hlpattern').addEventListener('input', (ev) => ev.target.classList.remove('invalid'));
  }

  // ---- the split view's shared time cursor ----

  const framed = window.parent !== window;
  let cursorEntry = null;

  // showCursor marks e as the cursor line and brings it into view.
  function showCursor(e) {
    cursorEntry = e;
    setFollow(false);
    scrollTo = e;
    drawGen++;
    queueRender();
  }

  // cursorAt shows the line of this pane nearest to the moment t.
  function cursorAt(t) {
    if (!view.length) return;
    let lo = 0;
    let hi = view.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (view[mid].k < t) lo = mid + 1;
      else hi = mid;
    }
    const i = Math.min(lo, view.length - 1);
    const j = i > 0 && Math.abs(view[i - 1].k - t) <= Math.abs(view[i].k - t) ? i - 1 : i;
    showCursor(view[j]);
  }

  function wireCursor() {
    if (!framed) return;
    document.body.classList.add('framed');
    window.addEventListener('message', (ev) => {
      if (ev.origin !== location.origin || !ev.data || ev.data.type !== 'logviewer-cursor-show') return;
      const t = Number(ev.data.t);
      if (t) cursorAt(t);
    });
  }

  // Hooks for the history search (search.js): it stops the live streams,
  // shows its matches in this list, and goes live again, from an event ID.
  window.LogViewerHooks = {
    state: () => ({ channels: st.channels.slice(), q: st.q, cs: st.cs, lvl: st.lvl }),
    stopLive() { stopStream(); },
    show(lines) { resetAll(); for (const data of lines) push(data); }, // record JSON texts, as the stream hands them
    live(from) { resetAll(); subscribe(from); },
  };

  function init() {
    who();
    wireCursor();
    wireHighlights();
    Object.assign(st, readHash());
    selPending = st.sel;
    if (window.matchMedia('(max-width: 820px)').matches) document.body.classList.add('side-closed');
    syncControls();
    compileFilter();
    wire();
    writeHash();
    ensureStream();
    pollChannels();
    queueRender();
  }

  init();
})();
