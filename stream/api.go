package stream

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
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

// handleChannels lists the known channels the user may read, sorted by name:
// {"channels":[{"name","count","last_seen","rate"}]}; ?prefix= keeps the
// names that start with it and ?limit= the first that many.
func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), apiTimeout)
	defer cancel()
	list, err := s.bus.Channels(ctx)
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
	kept := list[:0]
	for _, c := range list {
		if limit >= 0 && len(kept) == limit {
			break
		}
		if strings.HasPrefix(c.Name, prefix) && u.CanRead(c.Name) {
			kept = append(kept, c)
		}
	}
	list = kept
	if list == nil {
		list = []publish.ChannelInfo{}
	}
	writeJSON(w, http.StatusOK, channelsResponse{Channels: list})
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
