package query

import (
	"bytes"
	"strings"
)

// Prefilter rules out, from its raw JSON alone, most records a query cannot
// match, so that a search over a large history decodes only the few that
// may. It never rules out a record the query matches.
type Prefilter struct {
	lits   []literal
	fold   bool   // compare ASCII case-insensitively (the literals are lower case)
	levels []term // level terms, checked against a plain "level":N
	// onlyLevels is set when the query has level terms only: a record
	// whose raw level is plain is then decided without decoding it.
	onlyLevels bool
}

// literal is one text a matching record's raw JSON holds.
type literal struct {
	text    []byte
	at      int  // index of its rarest-looking byte, looked for first
	lo, up  byte // that byte, and its upper case when fold (else the same)
	numeric bool // only digits, '.' and '-': could be a number printed otherwise than written
	hasK    bool // holds 'k': U+212A (Kelvin) lower-cases to it
	hasI    bool // holds 'i': U+0130 lower-cases to it
}

// Prefilter returns the prefilter of q; nil when q has no term it can use.
//
// It uses the words and phrases that must be in a record's message, app or
// channel (terms without a field, or msg:), made of printable ASCII but
// '"', '\\', '<', '>' and '&' (which a JSON encoder may escape). Such text
// is in the decoded strings only if it is in the raw JSON, unless the JSON
// escapes it (\u, \/), or, ignoring case, a non-ASCII letter lower-cases to
// ASCII (U+212A to k, U+0130 to i), or a number-looking literal is in an
// _app written as a number (1e3 prints as 1000). A record where one of
// those could be is never ruled out.
func (q *Query) Prefilter() *Prefilter {
	if q == nil {
		return nil
	}
	p := &Prefilter{}
	for _, t := range q.terms {
		if t.field == "level" {
			p.levels = append(p.levels, t)
			continue
		}
		if t.negate || t.re != nil || t.text == "" || (t.field != "" && t.field != "msg") || !literalText(t.text) {
			continue
		}
		p.fold = !t.cs
		l := literal{text: []byte(t.text), numeric: strings.Trim(t.text, "0123456789.-") == ""}
		l.at = rarest(l.text)
		l.lo, l.up = l.text[l.at], l.text[l.at]
		if p.fold {
			l.hasK, l.hasI = strings.IndexByte(t.text, 'k') >= 0, strings.IndexByte(t.text, 'i') >= 0
			if l.lo >= 'a' && l.lo <= 'z' {
				l.up = l.lo - 'a' + 'A'
			}
		}
		p.lits = append(p.lits, l)
	}
	if len(p.lits) == 0 && len(p.levels) == 0 {
		return nil
	}
	p.onlyLevels = len(p.levels) == len(q.terms)
	return p
}

// Decide is MayMatch, and also says when its answer is sure, so that the
// record need not be decoded: always when it rules a record out, and for a
// query of level terms only whose record holds a plain level.
func (p *Prefilter) Decide(js []byte) (match, sure bool) {
	if p == nil {
		return true, false
	}
	for i := range p.lits {
		l := &p.lits[i]
		if !l.in(js, p.fold) && !l.hidden(js) {
			return false, true
		}
	}
	if len(p.levels) == 0 {
		return true, false
	}
	n, ok := rawLevel(js)
	if !ok {
		return true, false
	}
	r := Record{"level": float64(n)}
	for i := range p.levels {
		if p.levels[i].matchLevel(r) == p.levels[i].negate {
			return false, true
		}
	}
	return true, p.onlyLevels
}

// literalText reports whether s is made of bytes a JSON string holds as
// they are.
func literalText(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// MayMatch reports whether a record with this raw JSON may match the
// query; false only when it surely does not.
func (p *Prefilter) MayMatch(js []byte) bool {
	match, _ := p.Decide(js)
	return match
}

// rawLevel reads the severity out of raw JSON holding exactly one
// "level": key, whose value is one digit; ok is false for anything else
// (then the record is decoded). Elsewhere in a record the key could only
// be in a string, where its quotes are escaped, or in a nested object.
func rawLevel(js []byte) (int, bool) {
	const key = `"level":`
	i := bytes.Index(js, []byte(key))
	if i < 0 || i+len(key)+1 >= len(js) || bytes.Contains(js[i+len(key):], []byte(key)) {
		return 0, false
	}
	c, next := js[i+len(key)], js[i+len(key)+1]
	if c < '0' || c > '9' || (next != ',' && next != '}') {
		return 0, false
	}
	return int(c - '0'), true
}

// in reports whether the literal is in b, ignoring ASCII case when fold.
// It looks for its rarest-looking byte with bytes.IndexByte and compares
// around each hit.
func (l *literal) in(b []byte, fold bool) bool {
	if !fold {
		return bytes.Contains(b, l.text)
	}
	for from := l.at; from < len(b); {
		rest := b[from:]
		i := bytes.IndexByte(rest, l.lo)
		if l.up != l.lo {
			before := rest // the upper-case byte counts only before the lower-case one
			if i >= 0 {
				before = rest[:i]
			}
			if j := bytes.IndexByte(before, l.up); j >= 0 {
				i = j
			}
		}
		if i < 0 {
			return false
		}
		start := from + i - l.at
		if start+len(l.text) <= len(b) && equalFold(b[start:start+len(l.text)], l.text) {
			return true
		}
		from += i + 1
	}
	return false
}

// hidden reports whether raw JSON that does not hold the literal may still
// decode to text that holds it.
func (l *literal) hidden(js []byte) bool {
	for from := 0; ; {
		j := bytes.IndexByte(js[from:], '\\')
		if j < 0 {
			break
		}
		from += j + 1
		if from < len(js) {
			if c := js[from]; c == 'u' || c == '/' {
				return true
			}
			from++ // the escaped byte, a backslash included
		}
	}
	if (l.hasK && bytes.Contains(js, []byte("\u212a"))) || (l.hasI && bytes.Contains(js, []byte("\u0130"))) {
		return true
	}
	return l.numeric && numericApp(js)
}

// numericApp reports whether the JSON may hold an "_app" that is not a
// string.
func numericApp(js []byte) bool {
	for from := 0; ; {
		j := bytes.Index(js[from:], []byte(`"_app"`))
		if j < 0 {
			return false
		}
		from += j + len(`"_app"`)
		rest := bytes.TrimLeft(js[from:], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if rest = bytes.TrimLeft(rest[1:], " \t\r\n"); len(rest) == 0 || rest[0] != '"' {
				return true
			}
		}
	}
}

// equalFold compares ASCII letters case-insensitively; lit is lower case.
func equalFold(b, lit []byte) bool {
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lit[i] {
			return false
		}
	}
	return true
}

// letterRank orders lower-case letters from the most to the least common
// in English text.
const letterRank = "etaoinsrhldcumfpgwybvkxjqz"

// rarest returns the index of the byte of lit least likely to be common:
// not a letter (digits, punctuation) first, then the rarest letter.
func rarest(lit []byte) int {
	best, bestRank := 0, -2
	for i, c := range lit {
		rank := 100
		if c >= 'a' && c <= 'z' {
			rank = strings.IndexByte(letterRank, c)
		} else if c == ' ' {
			rank = -1 // spaces are everywhere
		}
		if rank > bestRank {
			best, bestRank = i, rank
		}
	}
	return best
}
