package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
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

// A configuration that does not load (the one a reload was just refused
// for) cannot lead status to the agent: status shows why, and says how to
// reach the agent instead.
func TestStatusWithAConfigurationThatDoesNotLoad(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "agent.hcl")
	if err := os.WriteFile(cfg, []byte("watch \"w\" {\n  bucket = \"b\"\n  plugin = \"nope\"\n}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCmd(t, "status", "-config", cfg)
	if code != exitFailure || !strings.Contains(errOut, "Unknown plugin") || !strings.Contains(errOut, cfg+" does not load") || !strings.Contains(errOut, "-http ADDR") {
		t.Errorf("status = %d %q", code, errOut)
	}
}
