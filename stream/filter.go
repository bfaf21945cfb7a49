package stream

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/logviewer/logviewer/publish"
)

// levelNames are the syslog severities by number, as ?level= takes them.
var levelNames = []string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// recordFilter is what ?q= and ?level= ask of a stream's records: the
// language of the viewer's filter box. q is text, matched case-insensitively
// (?cs=1: exactly) in the message, app or channel, or /regex/; level keeps
// severities up to it. The zero value keeps everything.
type recordFilter struct {
	text  string         // lower case unless caseSensitive
	re    *regexp.Regexp // for /regex/
	cs    bool
	level int // -1: any
}

// parseRecordFilter reads ?q=, ?cs= and ?level=.
func parseRecordFilter(q, cs, level string) (*recordFilter, error) {
	f := &recordFilter{level: -1, cs: cs == "1" || cs == "true"}
	if len(q) > 2 && strings.HasPrefix(q, "/") && strings.HasSuffix(q, "/") {
		expr := q[1 : len(q)-1]
		if !f.cs {
			expr = "(?i)" + expr
		}
		re, err := regexp.Compile(expr)
		if err != nil {
			return nil, fmt.Errorf("bad q %.60q: %w", q, err)
		}
		f.re = re
	} else if q != "" {
		f.text = q
		if !f.cs {
			f.text = strings.ToLower(q)
		}
	}
	if level != "" {
		n, err := strconv.Atoi(level)
		if err != nil {
			n = -1
			for i, name := range levelNames {
				if strings.EqualFold(level, name) {
					n = i
				}
			}
		}
		if n < 0 || n > 7 {
			return nil, fmt.Errorf("bad level %.20q: want 0 to 7 or emerg, alert, crit, err, warning, notice, info, debug", level)
		}
		f.level = n
	}
	if f.text == "" && f.re == nil && f.level < 0 {
		return nil, nil // no filter
	}
	return f, nil
}

// filterFields are the fields of a record the filter looks at.
type filterFields struct {
	Message string          `json:"short_message"`
	App     string          `json:"_app"`
	Level   json.RawMessage `json:"level"`
}

// keep reports whether rec passes the filter. A record that cannot be read
// is kept only when nothing but the level is asked and it has none.
func (f *recordFilter) keep(rec *publish.Record) bool {
	var fl filterFields
	if err := json.Unmarshal(rec.JSON, &fl); err != nil {
		return false
	}
	if f.level >= 0 {
		n, err := strconv.Atoi(string(bytes.TrimSpace(fl.Level)))
		if err != nil || n > f.level {
			return false
		}
	}
	switch {
	case f.re != nil:
		return f.re.MatchString(fl.Message) || f.re.MatchString(fl.App) || f.re.MatchString(rec.Channel)
	case f.text != "":
		return f.contains(fl.Message) || f.contains(fl.App) || f.contains(rec.Channel)
	}
	return true
}

func (f *recordFilter) contains(s string) bool {
	if !f.cs {
		s = strings.ToLower(s)
	}
	return strings.Contains(s, f.text)
}
