// logviewer: the filter language, the same as the server's ?q= (Go package
// query): words and "phrases", /regex/, field:value, field:"phrase" and
// field:/regex/ on any field of a record (or of the JSON object its message
// holds), level:<=warning, and -term to exclude. Terms are ANDed. Both are
// tested against query/testdata/cases.json.
'use strict';

(() => {
  const LEVELS = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug'];
  const WS = ' \t\r\n';
  const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

  // regexEnd: the index of the slash closing a regex opened before from.
  function regexEnd(s, from) {
    for (let j = from; j < s.length; j++) {
      if (s[j] === '\\') {
        j++;
        continue;
      }
      if (s[j] === '/' && (j + 1 === s.length || WS.includes(s[j + 1]))) return j;
    }
    return -1;
  }

  function tokens(s) {
    const out = [];
    let i = 0;
    while (i < s.length) {
      while (i < s.length && WS.includes(s[i])) i++;
      const start = i;
      while (i < s.length && !WS.includes(s[i])) {
        if (s[i] === '"') {
          const j = s.indexOf('"', i + 1);
          i = j >= 0 ? j + 1 : s.length;
          continue;
        }
        if (s[i] === '/') {
          const j = regexEnd(s, i + 1);
          if (j > 0) {
            i = j + 1;
            continue;
          }
        }
        i++;
      }
      if (i > start) out.push(s.slice(start, i));
    }
    return out;
  }

  const isFieldName = (s) => /^[A-Za-z0-9_.-]+$/.test(s);

  function compile(src, cs) {
    return new RegExp(src, cs ? '' : 'i'); // throws on a bad expression
  }

  function levelNumber(v) {
    if (/^\d+$/.test(v)) return Number(v);
    const l = v.toLowerCase();
    if (l === 'warn') return 4;
    if (l === 'error') return 3;
    return LEVELS.indexOf(l);
  }

  function parseTerm(tok, cs) {
    const t = { negate: false, cs, field: '', text: '', re: null, cmp: '', level: 0 };
    if (tok.length > 1 && tok[0] === '-') {
      t.negate = true;
      tok = tok.slice(1);
    }
    const i = tok.indexOf(':');
    if (i > 0 && tok[0] !== '"' && tok[0] !== '/' && isFieldName(tok.slice(0, i)) && !tok.startsWith('//', i + 1)) {
      t.field = tok.slice(0, i).toLowerCase();
      tok = tok.slice(i + 1);
      if (t.field === 'level') {
        t.cmp = '=';
        for (const op of ['<=', '>=', '<', '>', '=']) {
          if (tok.startsWith(op)) {
            t.cmp = op;
            tok = tok.slice(op.length);
            break;
          }
        }
        t.level = levelNumber(tok);
        if (!(t.level >= 0 && t.level <= 7)) throw new Error('bad level ' + JSON.stringify(tok));
        return t;
      }
    }
    if (tok.length >= 2 && tok[0] === '"' && tok[tok.length - 1] === '"') {
      tok = tok.slice(1, -1);
    } else if (tok.length > 2 && tok[0] === '/' && tok[tok.length - 1] === '/') {
      t.re = compile(tok.slice(1, -1), cs);
      return t;
    }
    t.text = cs ? tok : tok.toLowerCase();
    return t;
  }

  // parse reads a filter; it throws on a bad one. The result has match(rec)
  // for a record (short_message, _app, _channel, level and the other fields)
  // and mark: a global RegExp of the terms to highlight in text, or null.
  function parse(q, cs) {
    q = q.trim();
    let terms;
    if (q.length > 2 && q[0] === '/' && q[q.length - 1] === '/' && !q.slice(1, -1).includes('/ ')) {
      terms = [{ negate: false, cs, field: '', text: '', re: compile(q.slice(1, -1), cs), cmp: '', level: 0 }];
    } else {
      terms = tokens(q).map((tok) => parseTerm(tok, cs));
    }
    const marks = [];
    for (const t of terms) {
      if (t.negate || (t.field && t.field !== 'msg' && t.field !== 'message') || t.cmp) continue;
      if (t.re) marks.push(t.re.source);
      else if (t.text) marks.push(escapeRe(t.text));
    }
    return {
      empty: terms.length === 0,
      // fields: whether a term looks past the message, app, channel and level.
      fields: terms.some((t) => t.field && t.field !== 'level' && !ALIASES[t.field]) ||
        terms.some((t) => t.field === 'host' || t.field === 'message'),
      match: (rec) => terms.every((t) => matchTerm(t, rec) !== t.negate),
      mark: marks.length ? new RegExp(marks.map((m) => '(?:' + m + ')').join('|'), cs ? 'g' : 'gi') : null,
    };
  }

  const str = (v) => (v == null ? '' : typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v));

  function matchText(t, s) {
    if (t.re) return t.re.test(s);
    if (!t.text) return true;
    return (t.cs ? s : s.toLowerCase()).includes(t.text);
  }

  const ALIASES = {
    app: ['_app'],
    host: ['_hostname', '_app_name', 'host'],
    channel: ['_channel'],
    ch: ['_channel'],
    msg: ['short_message'],
    message: ['short_message', 'full_message'],
  };

  function fieldValue(rec, name) {
    if (!rec || typeof rec !== 'object') return undefined;
    for (const n of [...(ALIASES[name] || []), name, '_' + name]) {
      if (Object.prototype.hasOwnProperty.call(rec, n)) return str(rec[n]);
    }
    return undefined;
  }

  function messageObject(rec) {
    const m = str(rec.short_message).trim();
    if (m.length < 2 || m[0] !== '{') return null;
    try {
      const o = JSON.parse(m);
      return o && typeof o === 'object' && !Array.isArray(o) ? o : null;
    } catch {
      return null;
    }
  }

  function matchTerm(t, rec) {
    if (t.field === 'level') {
      const n = rec.level;
      if (typeof n !== 'number') return false;
      switch (t.cmp) {
        case '<=': return n <= t.level;
        case '<': return n < t.level;
        case '>=': return n >= t.level;
        case '>': return n > t.level;
        default: return n === t.level;
      }
    }
    if (!t.field) {
      return matchText(t, str(rec.short_message)) || matchText(t, str(rec._app)) || matchText(t, str(rec._channel));
    }
    let v = fieldValue(rec, t.field);
    if (v === undefined) v = fieldValue(messageObject(rec), t.field);
    return v !== undefined && matchText(t, v);
  }

  window.LogQuery = { parse };
})();
