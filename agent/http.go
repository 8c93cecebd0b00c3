package agent

import (
	"encoding/json"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the agent's HTTP endpoints:
//
//	/metrics  Prometheus metrics
//	/healthz  200 unless a watch is unhealthy: failing, detached (its watch
//	          on the bucket cannot be created), stale (not caught up for
//	          longer than its stale_after) or held (503, with those watches)
//	/readyz   200 once every watch is ready (caught up and healthy), else
//	          503 with the watches that are not and why ("reason")
//	/status   every watch's status as JSON, what reloads did ("reload"),
//	          and the fleet reporter's host name, instance and conflicts
//	          ("report", with a report block)
//
// Run serves it behind the http block's authentication (httpauth.go).
func (a *Agent) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.metrics.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		var failing []WatchStatus
		for _, s := range a.Status() {
			if !s.Healthy() {
				failing = append(failing, s)
			}
		}
		if len(failing) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, withWatches(r, map[string]any{"status": "failing"}, failing))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var waiting []WatchStatus
		for _, s := range a.Status() {
			if !s.Ready {
				waiting = append(waiting, s)
			}
		}
		if len(waiting) > 0 {
			writeJSON(w, http.StatusServiceUnavailable, withWatches(r, map[string]any{"status": "not ready"}, waiting))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		statuses := a.Status()
		ready := true
		for _, s := range statuses {
			ready = ready && s.Ready
		}
		body := map[string]any{"ready": ready, "watches": statuses}
		if rs := a.ReloadStatus(); !rs.LastAt.IsZero() {
			body["reload"] = rs
		}
		if rs := a.ReportStatus(); rs != nil {
			body["report"] = rs
		}
		writeJSON(w, http.StatusOK, body)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
