package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestStatusShowsARefusedReload(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(`{"ready": true, "watches": [{"name": "routes", "bucket": "routes", "state": "ready", "ready": true}],
"reload": {"reloads": 0, "failures": 1, "last_error": "plugin nginx: bad magic number", "last_at": "2026-01-01T00:00:00Z"}}`))
	}))
	defer srv.Close()
	code, out, _ := runCmd(t, "status", "-addr", strings.TrimPrefix(srv.URL, "http://"))
	if code != exitOK || !strings.Contains(out, "last reload refused at 2026-01-01T00:00:00Z (the running configuration stays): plugin nginx: bad magic number\n") {
		t.Errorf("status = %d\n%s", code, out)
	}
}
