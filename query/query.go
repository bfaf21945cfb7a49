// Package query is the filter language of the viewer's filter box and of
// the streams' ?q=: words and "phrases", /regex/, field:value, field:"phrase"
// and field:/regex/ on any field of a record (or of the JSON object its
// message holds), level:<=warning, and -term to exclude. Terms are ANDed.
// The viewer's JavaScript implements the same grammar; testdata/cases.json
// holds the cases both are tested against.
package query

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// levelNames are the syslog severities by number.
var levelNames = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// Query is a parsed filter. The zero Query matches everything.
type Query struct {
	terms []term
}

// term is one condition.
type term struct {
	negate bool
	cs     bool           // case-sensitive
	field  string         // "": the message, app and channel
	text   string         // substring, lower case unless case-sensitive
	re     *regexp.Regexp // instead of text
	cmp    string         // level terms: "<=", "<", ">=", ">", "="
	level  int
}

// Parse reads a filter. caseSensitive makes words, phrases and regular
// expressions match case exactly. A whole filter written as one /regex/
// (spaces inside included) is one regular expression, as the viewer's
// filter box always took it.
func Parse(s string, caseSensitive bool) (*Query, error) {
	s = strings.TrimSpace(s)
	q := &Query{}
	if len(s) > 2 && s[0] == '/' && s[len(s)-1] == '/' && !strings.Contains(s[1:len(s)-1], "/ ") {
		re, err := compile(s[1:len(s)-1], caseSensitive)
		if err != nil {
			return nil, err
		}
		q.terms = append(q.terms, term{re: re, cs: caseSensitive})
		return q, nil
	}
	for s != "" {
		var tok string
		tok, s = nextToken(s)
		if tok == "" {
			continue
		}
		t, err := parseTerm(tok, caseSensitive)
		if err != nil {
			return nil, err
		}
		q.terms = append(q.terms, t)
	}
	return q, nil
}

// nextToken cuts the first token off s: up to white space, except inside
// "quotes" and /slashes/ (a regex ends at a slash followed by white space or
// the end).
func nextToken(s string) (tok, rest string) {
	s = strings.TrimLeft(s, " \t\r\n")
	i := 0
	for i < len(s) && s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n' {
		switch s[i] {
		case '"':
			if j := strings.IndexByte(s[i+1:], '"'); j >= 0 {
				i += j + 2
				continue
			}
			i = len(s)
			continue
		case '/':
			if j := regexEnd(s, i+1); j > 0 {
				i = j + 1
				continue
			}
		}
		i++
	}
	return s[:i], s[i:]
}

// regexEnd returns the index of the slash closing a regex that opened just
// before from: one followed by white space or the end; -1 when none.
func regexEnd(s string, from int) int {
	for j := from; j < len(s); j++ {
		if s[j] == '\\' {
			j++
			continue
		}
		if s[j] == '/' && (j+1 == len(s) || strings.IndexByte(" \t\r\n", s[j+1]) >= 0) {
			return j
		}
	}
	return -1
}

// parseTerm reads one token: [-][field:](word | "phrase" | /regex/), or a
// level comparison.
func parseTerm(tok string, cs bool) (term, error) {
	t := term{cs: cs}
	if len(tok) > 1 && tok[0] == '-' {
		t.negate, tok = true, tok[1:]
	}
	// field:value, but not a URL (http://...).
	if i := strings.IndexByte(tok, ':'); i > 0 && tok[0] != '"' && tok[0] != '/' && isFieldName(tok[:i]) &&
		!strings.HasPrefix(tok[i+1:], "//") {
		t.field, tok = strings.ToLower(tok[:i]), tok[i+1:]
		if t.field == "level" {
			return parseLevel(t, tok)
		}
	}
	switch {
	case len(tok) >= 2 && tok[0] == '"' && tok[len(tok)-1] == '"':
		tok = tok[1 : len(tok)-1]
	case len(tok) > 2 && tok[0] == '/' && tok[len(tok)-1] == '/':
		re, err := compile(tok[1:len(tok)-1], cs)
		if err != nil {
			return t, err
		}
		t.re = re
		return t, nil
	}
	t.text = tok
	if !cs {
		t.text = strings.ToLower(tok)
	}
	return t, nil
}

// isFieldName reports whether s can name a field: letters, digits, '_',
// '-' and '.'.
func isFieldName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// parseLevel reads the value of a level: term: [<=|<|>=|>|=]name-or-number.
func parseLevel(t term, v string) (term, error) {
	t.cmp = "="
	for _, op := range []string{"<=", ">=", "<", ">", "="} {
		if strings.HasPrefix(v, op) {
			t.cmp, v = op, v[len(op):]
			break
		}
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		n = -1
		for i, name := range levelNames {
			if strings.EqualFold(v, name) || (name == "warning" && strings.EqualFold(v, "warn")) ||
				(name == "err" && strings.EqualFold(v, "error")) {
				n = i
			}
		}
	}
	if n < 0 || n > 7 {
		return t, fmt.Errorf("bad level %q: want 0 to 7 or emerg, alert, crit, err, warning, notice, info, debug", v)
	}
	t.level = n
	return t, nil
}

func compile(expr string, cs bool) (*regexp.Regexp, error) {
	if !cs {
		expr = "(?i)" + expr
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("bad regular expression /%s/: %w", expr, err)
	}
	return re, nil
}

// Empty reports whether q matches everything.
func (q *Query) Empty() bool { return q == nil || len(q.terms) == 0 }

// Basic reports whether q looks only at the message, app, channel and
// level of a record, so that a caller may hand Match just those
// (BasicRecord) instead of decoding the whole record.
func (q *Query) Basic() bool {
	if q == nil {
		return true
	}
	for _, t := range q.terms {
		switch t.field {
		case "", "level", "app", "channel", "ch", "msg":
		default:
			return false
		}
	}
	return true
}

// basicFields are the fields of a record a Basic query looks at.
type basicFields struct {
	Message string   `json:"short_message"`
	App     *string  `json:"_app"`
	Channel string   `json:"_channel"`
	Level   *float64 `json:"level"`
}

// BasicRecord decodes from a GELF JSON object only what a Basic query
// looks at.
func BasicRecord(js []byte) (Record, error) {
	var f basicFields
	if err := json.Unmarshal(js, &f); err != nil {
		return nil, err
	}
	r := Record{"short_message": f.Message, "_channel": f.Channel}
	if f.App != nil {
		r["_app"] = *f.App
	}
	if f.Level != nil {
		r["level"] = *f.Level
	}
	return r, nil
}

// Record is what a query looks at: a record's fields (GELF JSON decoded).
type Record map[string]any

// DecodeRecord reads a GELF JSON object.
func DecodeRecord(js []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(js, &r); err != nil {
		return nil, err
	}
	return r, nil
}

// Match reports whether r passes every term of q.
func (q *Query) Match(r Record) bool {
	if q.Empty() {
		return true
	}
	var inner Record // the message's own JSON object, decoded once when a term needs it
	innerDone := false
	for i := range q.terms {
		t := &q.terms[i]
		var ok bool
		switch {
		case t.field == "level":
			ok = t.matchLevel(r)
		case t.field == "":
			ok = t.matchText(str(r["short_message"])) || t.matchText(str(r["_app"])) || t.matchText(str(r["_channel"]))
		default:
			v, found := fieldValue(r, t.field)
			if !found {
				if !innerDone {
					inner, innerDone = messageObject(r), true
				}
				v, found = fieldValue(inner, t.field)
			}
			ok = found && t.matchText(v)
		}
		if ok == t.negate {
			return false
		}
	}
	return true
}

func (t *term) matchText(s string) bool {
	if t.re != nil {
		return t.re.MatchString(s)
	}
	if t.cs {
		return strings.Contains(s, t.text)
	}
	return strings.Contains(strings.ToLower(s), t.text)
}

func (t *term) matchLevel(r Record) bool {
	f, ok := r["level"].(float64)
	if !ok {
		return false
	}
	n := int(f)
	switch t.cmp {
	case "<=":
		return n <= t.level
	case "<":
		return n < t.level
	case ">=":
		return n >= t.level
	case ">":
		return n > t.level
	}
	return n == t.level
}

// fieldAliases returns the fields a short name a user types stands for.
func fieldAliases(name string) []string {
	switch name {
	case "app":
		return []string{"_app"}
	case "host":
		return []string{"_hostname", "_app_name", "host"}
	case "channel", "ch":
		return []string{"_channel"}
	case "msg":
		return []string{"short_message"}
	case "message":
		return []string{"short_message", "full_message"}
	}
	return nil
}

// fieldValue finds a field by its alias, its name, or its name with the
// leading '_' of GELF's additional fields.
func fieldValue(r Record, name string) (string, bool) {
	if r == nil {
		return "", false
	}
	for _, n := range fieldAliases(name) {
		if v, ok := r[n]; ok {
			return str(v), true
		}
	}
	for _, n := range []string{name, "_" + name} {
		if v, ok := r[n]; ok {
			return str(v), true
		}
	}
	return "", false
}

// messageObject decodes a message that is a JSON object, else nil.
func messageObject(r Record) Record {
	msg := strings.TrimSpace(str(r["short_message"]))
	if len(msg) < 2 || msg[0] != '{' {
		return nil
	}
	var inner Record
	if json.Unmarshal([]byte(msg), &inner) != nil {
		return nil
	}
	return inner
}

// str renders a JSON value as the text a filter sees.
func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	b, _ := json.Marshal(v)
	return string(b)
}
