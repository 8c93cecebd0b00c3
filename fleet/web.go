package fleet

import (
	"context"
	"embed"
	"encoding/json"
	"io/fs"
	"net/http"
	"strconv"
)

//go:embed web
var webFiles embed.FS

// Source lists the current records, e.g. Read over the report bucket.
type Source func(ctx context.Context) ([]Record, error)

// Handler serves the rollout page: "/" is a page (plain HTML, CSS and
// JavaScript, embedded) that polls "/api/report" every second and shows
// hosts × watches with revision, lag and state, and each watch's lag
// histogram. "/api/report" is Aggregate(records, q) as JSON, its records
// read from src on each request; "?revision=R" overrides q.Revision. It is
// safe for concurrent use if src is.
func Handler(src Source, q Query) http.Handler {
	static, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(err) // the embedded tree is part of the binary
	}
	mux := http.NewServeMux()
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /api/report", func(w http.ResponseWriter, r *http.Request) {
		q := q
		if s := r.URL.Query().Get("revision"); s != "" {
			rev, err := strconv.ParseUint(s, 10, 64)
			if err != nil {
				http.Error(w, "revision is not a number: "+s, http.StatusBadRequest)
				return
			}
			q.Revision = rev
		}
		records, err := src(r.Context())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(Aggregate(records, q))
	})
	return mux
}
