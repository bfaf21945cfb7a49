package stream

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/logviewer/logviewer/publish"
	"github.com/logviewer/logviewer/query"
)

// recordFilter is what ?q= (the query language of package query, the
// viewer's filter box; ?cs=1 for exact case) and ?level= (that severity and
// worse) ask of a stream's records.
type recordFilter struct {
	q     *query.Query
	basic bool // q needs only message, app, channel and level: decode just those
}

// parseRecordFilter reads ?q=, ?cs= and ?level=; nil when they ask nothing.
func parseRecordFilter(q, cs, level string) (*recordFilter, error) {
	if level != "" {
		if _, err := strconv.Atoi(level); err != nil && strings.ContainsAny(level, " <>=") {
			return nil, fmt.Errorf("bad level %.20q: want 0 to 7 or a severity name", level)
		}
		q += " level:<=" + level
	}
	parsed, err := query.Parse(q, cs == "1" || cs == "true")
	if err != nil {
		return nil, fmt.Errorf("bad q or level: %w", err)
	}
	if parsed.Empty() {
		return nil, nil
	}
	return &recordFilter{q: parsed, basic: parsed.Basic()}, nil
}

// keep reports whether rec passes the filter; a record that is not a JSON
// object does not.
func (f *recordFilter) keep(rec *publish.Record) bool {
	decode := query.DecodeRecord
	if f.basic {
		decode = query.BasicRecord
	}
	r, err := decode(rec.JSON)
	if err != nil {
		return false
	}
	return f.q.Match(r)
}
