package stream

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/logviewer/logviewer/publish"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// apiTimeout bounds the bus calls behind /api/channels and /healthz.
const apiTimeout = 3 * time.Second

// channelsResponse is the body of GET /api/channels.
type channelsResponse struct {
	Channels []publish.ChannelInfo `json:"channels"`
}

// channelsTTL is how long a listing of the bus's channels serves: many
// pollers of /api/channels cost one listing (and one hold of the bus's
// lock, which publishing waits for) per period, however many they are.
const channelsTTL = 500 * time.Millisecond

// channelCache holds the last listing of the bus's channels.
type channelCache struct {
	mu   sync.Mutex
	at   time.Time
	list []publish.ChannelInfo // shared: never changed once stored
	json []byte                // the whole list encoded, for those who read it all
}

// channels returns the bus's channels, listed at most channelsTTL ago, and
// their encoding as a whole response.
func (s *Server) channels(ctx context.Context) ([]publish.ChannelInfo, []byte, error) {
	c := &s.chanCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.list != nil && time.Since(c.at) < channelsTTL {
		return c.list, c.json, nil
	}
	list, err := s.bus.Channels(ctx)
	if err != nil {
		return nil, nil, err
	}
	if list == nil {
		list = []publish.ChannelInfo{}
	}
	js, err := json.Marshal(channelsResponse{Channels: list})
	if err != nil {
		return nil, nil, err
	}
	c.list, c.json, c.at = list, append(js, '\n'), time.Now()
	return c.list, c.json, nil
}

// handleChannels lists the known channels the user may read, sorted by name:
// {"channels":[{"name","count","last_seen","rate"}]}; ?prefix= keeps the
// names that start with it and ?limit= the first that many. The listing is
// at most channelsTTL old.
func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	list, whole, err := s.channels(ctx)
	if err != nil {
		s.log.Warn("list channels", slog.Any("error", err))
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": err.Error()})
		return
	}
	q := r.URL.Query()
	prefix := q.Get("prefix")
	limit := -1
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			http.Error(w, "bad limit "+strconv.Quote(l)+": want a whole number", http.StatusBadRequest)
			return
		}
		limit = n
	}
	u := userOf(r)
	if u.All && prefix == "" && limit < 0 {
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "no-store")
		_, _ = w.Write(whole)
		return
	}
	room := len(list)
	if limit >= 0 {
		room = min(room, limit)
	}
	kept := make([]publish.ChannelInfo, 0, room) // the cached list is shared: filter into a copy
	for _, c := range list {
		if limit >= 0 && len(kept) == limit {
			break
		}
		if strings.HasPrefix(c.Name, prefix) && u.CanRead(c.Name) {
			kept = append(kept, c)
		}
	}
	writeJSON(w, http.StatusOK, channelsResponse{Channels: kept})
}

// healthResponse is the body of GET /healthz.
type healthResponse struct {
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// handleHealth answers 200 {"status":"ok"}, or 200 {"status":"degraded",
// "error":"..."} when the bus works only in part (the daemon still serves).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	resp := healthResponse{Status: "ok"}
	if err := s.bus.Health(ctx); err != nil {
		resp = healthResponse{Status: "degraded", Error: err.Error()}
	}
	writeJSON(w, http.StatusOK, resp)
}

// metricsHandler serves the gatherer in the Prometheus text format.
func (s *Server) metricsHandler() http.Handler {
	return promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	})
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
