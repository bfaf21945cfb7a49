// logviewer: the viewer's stream reader, a dedicated worker. It reads one
// Server-Sent Events stream with fetch, off the page's main thread, and hands
// the page its records in batches: a page taking 20,000 lines a second then
// spends no main-thread task on the network, one event per line. It reads
// no further while the page has not taken in MAX_UNTAKEN records, so a busy
// page holds a bounded number and the server drops, and counts, the rest.
//
// From the page: {url, since} to start (since: resume after that event ID),
// then numbers (records taken in).
// To the page: {state}, {batch: [...]} where each item is a record's JSON
// text or {event, data} for an SSE event of another type (dropped, gap).
'use strict';

const MAX_UNTAKEN = 5000; // records handed over, not yet taken in by the page
const FLUSH_MS = 16; // how long a batch waits for more before it goes
const BATCH_MAX = 2000; // records in one batch at most

let base = ''; // the stream's address without its resume point
let lastId = '';
let untaken = 0;
let resume = null; // resolves when the page has taken in enough
let batch = [];
let flushTimer = 0;
let tries = 0;

function flush() {
  clearTimeout(flushTimer);
  flushTimer = 0;
  if (!batch.length) return;
  postMessage({ batch });
  batch = [];
}

function emit(item, isRecord) {
  batch.push(item);
  if (isRecord) untaken++;
  if (batch.length >= BATCH_MAX) flush();
  else if (!flushTimer) flushTimer = setTimeout(flush, FLUSH_MS);
}

// dispatch hands over one SSE event.
function dispatch(type, data, id) {
  if (id) lastId = id;
  if (type === 'message' || type === '') emit(data, true);
  else emit({ event: type, data }, false);
}

// read reads one response body as SSE until it ends, waiting whenever the
// page is MAX_UNTAKEN records behind.
async function read(body) {
  const reader = body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  let type = '';
  let data = [];
  let id = '';
  for (;;) {
    if (untaken >= MAX_UNTAKEN) {
      flush();
      await new Promise((r) => (resume = r));
    }
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let at = 0;
    for (;;) {
      const nl = buf.indexOf('\n', at);
      if (nl < 0) break;
      let line = buf.slice(at, nl);
      at = nl + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '') {
        if (data.length) dispatch(type, data.join('\n'), id);
        type = '';
        data = [];
        continue;
      }
      if (line[0] === ':') continue; // a comment: the heartbeat
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      let val = colon < 0 ? '' : line.slice(colon + 1);
      if (val[0] === ' ') val = val.slice(1);
      if (field === 'data') data.push(val);
      else if (field === 'event') type = val;
      else if (field === 'id') id = val;
    }
    buf = buf.slice(at);
  }
}

// run opens the stream and opens it again after it ends, from the last
// event received, backing off while the server cannot be reached.
async function run() {
  for (;;) {
    const url = base + (lastId ? '&since=' + encodeURIComponent(lastId) : '');
    try {
      const resp = await fetch(url, { cache: 'no-store', headers: { Accept: 'text/event-stream' } });
      if (!resp.ok || !resp.body) throw new Error('HTTP ' + resp.status);
      postMessage({ state: 'live' });
      tries = 0;
      await read(resp.body);
    } catch {
      // the server went away or refused: try again below
    }
    flush();
    postMessage({ state: 'reconnecting' });
    const delay = Math.min(10000, 1000 * 2 ** tries);
    tries++;
    await new Promise((r) => setTimeout(r, delay));
  }
}

onmessage = (ev) => {
  if (typeof ev.data === 'number') {
    untaken = Math.max(0, untaken - ev.data);
    if (resume && untaken < MAX_UNTAKEN / 2) {
      const r = resume;
      resume = null;
      r();
    }
    return;
  }
  if (ev.data && typeof ev.data.url === 'string' && !base) {
    base = ev.data.url;
    if (typeof ev.data.since === 'string' && ev.data.since) lastId = ev.data.since; // resume after it
    run();
  }
};
