package query

import (
	"bytes"
	"encoding/binary"
)

// Prefilter rules out, from its raw JSON alone, most records a query cannot
// match, so that a search over a large history decodes only the few that
// may. It never rules out a record the query matches.
type Prefilter struct {
	lits [][]byte // each must be in the raw JSON; lower case when fold
	fold bool     // compare ASCII case-insensitively
}

// Prefilter returns the prefilter of q; nil when q has no term it can use.
//
// It uses the words and phrases that must be in a record's message, app or
// channel (terms without a field, or msg:), made of printable ASCII but
// '"', '\\', '<', '>' and '&' (which a JSON encoder may escape). Such text
// is in the decoded strings only if it is in the raw JSON, as long as the
// JSON is plain: only ASCII, no \u or \/ escape, and an _app that is a
// string (a number may be written otherwise than it is printed). A record
// that is not plain is never ruled out.
func (q *Query) Prefilter() *Prefilter {
	if q == nil {
		return nil
	}
	p := &Prefilter{}
	for _, t := range q.terms {
		if t.negate || t.re != nil || t.text == "" || (t.field != "" && t.field != "msg") || !literalText(t.text) {
			continue
		}
		p.fold = !t.cs
		p.lits = append(p.lits, []byte(t.text))
	}
	if len(p.lits) == 0 {
		return nil
	}
	return p
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
	if p == nil {
		return true
	}
	for _, l := range p.lits {
		if !contains(js, l, p.fold) {
			return !plain(js)
		}
	}
	return true
}

// contains reports whether lit is in b, ignoring ASCII case when fold (lit
// is then lower case). It looks for the rarest-looking byte of lit with
// bytes.IndexByte and compares around each hit.
func contains(b, lit []byte, fold bool) bool {
	if !fold {
		return bytes.Contains(b, lit)
	}
	at := rarest(lit)
	lo := lit[at]
	up := lo
	if lo >= 'a' && lo <= 'z' {
		up = lo - 'a' + 'A'
	}
	for from := at; from < len(b); {
		rest := b[from:]
		i := bytes.IndexByte(rest, lo)
		if up != lo {
			before := rest // the upper-case byte counts only before the lower-case one
			if i >= 0 {
				before = rest[:i]
			}
			if j := bytes.IndexByte(before, up); j >= 0 {
				i = j
			}
		}
		if i < 0 {
			return false
		}
		start := from + i - at
		if start+len(lit) <= len(b) && equalFold(b[start:start+len(lit)], lit) {
			return true
		}
		from += i + 1
	}
	return false
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
	best, bestRank := 0, -1
	for i, c := range lit {
		rank := 100
		if c >= 'a' && c <= 'z' {
			rank = bytes.IndexByte([]byte(letterRank), c)
		} else if c == ' ' {
			rank = -1 // spaces are everywhere
		}
		if rank > bestRank {
			best, bestRank = i, rank
		}
	}
	return best
}

// plain reports whether raw JSON decodes to the same ASCII text it holds:
// no byte past ASCII, no \u or \/ escape, and an _app that is a string.
func plain(js []byte) bool {
	i := 0
	for ; i+8 <= len(js); i += 8 {
		if binary.LittleEndian.Uint64(js[i:])&0x8080808080808080 != 0 {
			return false
		}
	}
	for ; i < len(js); i++ {
		if js[i] >= 0x80 {
			return false
		}
	}
	for from := 0; ; {
		j := bytes.IndexByte(js[from:], '\\')
		if j < 0 {
			break
		}
		from += j + 1
		if from < len(js) {
			switch js[from] {
			case 'u', '/':
				return false
			}
			from++ // the escaped byte, a backslash included
		}
	}
	for from := 0; ; {
		j := bytes.Index(js[from:], []byte(`"_app"`))
		if j < 0 {
			break
		}
		from += j + len(`"_app"`)
		rest := bytes.TrimLeft(js[from:], " \t\r\n")
		if len(rest) > 0 && rest[0] == ':' {
			if rest = bytes.TrimLeft(rest[1:], " \t\r\n"); len(rest) == 0 || rest[0] != '"' {
				return false
			}
		}
	}
	return true
}
