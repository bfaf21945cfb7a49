package stream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/logviewer/logviewer/archive"
	"github.com/logviewer/logviewer/auth"
	"github.com/logviewer/logviewer/internal/glob"
	"github.com/logviewer/logviewer/publish"
	"github.com/logviewer/logviewer/query"
)

// Bounds of one search request: it stops at the first of them and says
// where to continue.
const (
	defaultSearchLimit = 100
	maxSearchLimit     = 1000
	// maxSearchScan is the most bytes of history one request reads.
	maxSearchScan = 512 << 20
	// searchTimeout is the longest one request scans.
	searchTimeout = 5 * time.Second
)

// historian is a bus with a history on disk (the memory hub with
// --data-dir).
type historian interface {
	History() publish.Archive
}

// searchRequest is what GET /api/search asks.
type searchRequest struct {
	pattern      string
	filter       *recordFilter // nil: every record
	pre          *query.Prefilter
	since, until int64 // Unix ns, 0: open
	limit        int
	desc         bool
	cursor       archive.Key // continue after it (before it when desc); zero: from the end
}

// searchEnd is the last line of a search response.
type searchEnd struct {
	Search searchStatus `json:"_search"`
}

// searchStatus says how a search went and where to continue.
type searchStatus struct {
	// More is true when the range was not scanned to its end: ask again
	// with cursor=Cursor for the next page.
	More   bool   `json:"more"`
	Cursor string `json:"cursor,omitempty"`
	// Records is how many records this response holds.
	Records int `json:"records"`
	// ScannedBytes is how much history this request read.
	ScannedBytes int64  `json:"scanned_bytes"`
	Order        string `json:"order"`
	// Holes counts places in the range where records were not stored
	// (the disk was full).
	Holes int    `json:"holes,omitempty"`
	Error string `json:"error,omitempty"`
}

// parseSearchRequest reads ?q=&cs=&level=&ch=&since=&until=&limit=&order=&cursor=.
func parseSearchRequest(r *http.Request, now time.Time) (searchRequest, error) {
	q := r.URL.Query()
	req := searchRequest{pattern: strings.Join(q["ch"], ","), limit: defaultSearchLimit, desc: true}
	if req.pattern == "" {
		req.pattern = "*"
	}
	if err := validatePattern(req.pattern); err != nil {
		return req, err
	}
	f, err := parseRecordFilter(q.Get("q"), q.Get("cs"), q.Get("level"))
	if err != nil {
		return req, err
	}
	req.filter = f
	if f != nil {
		req.pre = f.q.Prefilter()
	}
	for _, b := range []struct {
		name string
		to   *int64
	}{{"since", &req.since}, {"until", &req.until}} {
		if v := q.Get(b.name); v != "" {
			t, err := parseSearchTime(v, now)
			if err != nil {
				return req, fmt.Errorf("bad %s %.40q: %w", b.name, v, err)
			}
			*b.to = t.UnixNano()
		}
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 {
			return req, fmt.Errorf("bad limit %.20q: want 1 to %d", l, maxSearchLimit)
		}
		req.limit = min(n, maxSearchLimit)
	}
	switch q.Get("order") {
	case "", "desc", "newest":
	case "asc", "oldest":
		req.desc = false
	default:
		return req, fmt.Errorf("bad order %.20q: want desc (newest first) or asc", q.Get("order"))
	}
	if c := q.Get("cursor"); c != "" {
		if req.cursor, err = archive.ParseKey(c); err != nil {
			return req, fmt.Errorf("bad cursor: %w", err)
		}
	}
	return req, nil
}

// parseSearchTime reads a time: RFC 3339, Unix seconds (with a fraction),
// or a duration before now ("15m", "2h", "7d").
func parseSearchTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 {
		return time.Unix(0, int64(f*1e9)), nil
	}
	var d days
	if err := d.set(v); err == nil && d >= 0 {
		return now.Add(-time.Duration(d)), nil
	}
	return time.Time{}, errors.New("want RFC 3339, Unix seconds, or a duration ago such as 15m, 2h or 7d")
}

// days is a duration that also takes whole days ("7d").
type days time.Duration

func (d *days) set(s string) error {
	if n, ok := strings.CutSuffix(s, "d"); ok {
		v, err := strconv.ParseUint(n, 10, 16)
		if err != nil {
			return err
		}
		*d = days(time.Duration(v) * 24 * time.Hour)
		return nil
	}
	v, err := time.ParseDuration(s)
	*d = days(v)
	return err
}

// handleSearch answers GET /api/search: the records of the retained history
// (disk, and so memory, which is its newest part) that match, newest first
// (or oldest first with order=asc), as NDJSON, one record a line, then one
// {"_search":{...}} line that says whether there is more and the cursor to
// ask for it. A request stops at limit records, maxSearchScan bytes read or
// searchTimeout, whichever comes first. Only the channels the user may
// read are searched.
func (s *Server) handleSearch(w http.ResponseWriter, r *http.Request) {
	h, ok := s.bus.(historian)
	if !ok || h.History() == nil {
		http.Error(w, "search needs the history on disk: start the daemon with --data-dir (in-memory bus)", http.StatusNotImplemented)
		return
	}
	req, err := parseSearchRequest(r, time.Now())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	user := userOf(r)
	pattern, ok := authorize(user, req.pattern)
	if !ok {
		http.Error(w, "403 forbidden: "+user.Name+" may not read channel "+req.pattern, http.StatusForbidden)
		return
	}
	req.pattern = pattern
	ctx, cancel := context.WithTimeout(r.Context(), searchTimeout)
	defer cancel()
	hdr := w.Header()
	hdr.Set("Content-Type", "application/x-ndjson")
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	out := bufio.NewWriterSize(w, 64<<10)
	st, err := search(ctx, h.History(), user, req, func(js []byte) error {
		out.Write(js)
		return out.WriteByte('\n')
	})
	if err != nil {
		s.log.Warn("search failed", slog.String("remote", r.RemoteAddr), slog.Any("error", err))
		st.Error = err.Error()
	}
	end, _ := json.Marshal(searchEnd{Search: st})
	out.Write(end)
	out.WriteByte('\n')
	out.Flush()
}

// search scans arch for req on behalf of user and hands each matching
// record's JSON to emit (valid only during the call).
func search(ctx context.Context, arch publish.Archive, user *auth.User, req searchRequest, emit func([]byte) error) (searchStatus, error) {
	st := searchStatus{Order: "desc"}
	if !req.desc {
		st.Order = "asc"
	}
	o := archive.ScanOptions{Desc: req.desc, Since: req.since, Until: req.until, MaxBytes: maxSearchScan,
		Match: func(ch string) bool { return glob.MatchList(req.pattern, ch) && user.CanRead(ch) }}
	if req.desc {
		o.Before = req.cursor
	} else {
		o.After = req.cursor
	}
	var emitErr error
	var rec publish.Record
	res, err := arch.Scan(ctx, o, func(e *archive.Entry) bool {
		if e.Hole {
			st.Holes++
			return true
		}
		if req.filter != nil {
			match, sure := req.pre.Decide(e.JSON)
			if !match {
				return true
			}
			rec.JSON = e.JSON
			if !sure && !req.filter.keep(&rec) {
				return true
			}
		}
		if emitErr = emit(e.JSON); emitErr != nil {
			return false
		}
		st.Records++
		return st.Records < req.limit
	})
	st.ScannedBytes = res.Bytes
	if err == nil {
		err = emitErr
	}
	// Stopped by the limit on the range's last record, More is true: the
	// next page is then empty.
	st.More = !res.Done
	if st.More && !res.Last.IsZero() {
		st.Cursor = res.Last.String()
	} else if st.More {
		st.Cursor = req.cursor.String()
	}
	return st, err
}
