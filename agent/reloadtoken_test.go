package agent

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A reload re-reads the http token_file: a rotated token is the one
// requests need from then on, the old one is refused; a token file that
// cannot be read (empty, missing) refuses the reload and the running token
// stays.
func TestReloadRotatesTheHTTPToken(t *testing.T) {
	f := newFixture(t)
	f.put("a", "files.x", "1")
	f.put("b", "files.x", "1")
	token := filepath.Join(f.dir, "http.token")
	if err := os.WriteFile(token, []byte("old-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	src := twoWatches + `
http {
  listen     = "` + addr + `"
  token_file = "$DIR/http.token"
}`
	a, _ := f.start(f.config(src))
	waitFor(t, "both watches to sync", func() bool { return a.Ready() && len(a.Status()) == 2 })
	status := func(tok string) int {
		code, _ := httpGet(t, http.DefaultClient, "http://"+addr+"/status", "Authorization", "Bearer "+tok)
		return code
	}
	if code := status("old-token"); code != http.StatusOK {
		t.Fatalf("/status with the token = %d", code)
	}

	if err := os.WriteFile(token, []byte("new-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.Reload(context.Background(), f.config(src)); err != nil {
		t.Fatalf("Reload after rotating the token: %v", err)
	}
	if code := status("new-token"); code != http.StatusOK {
		t.Errorf("/status with the rotated token = %d, want 200", code)
	}
	if code := status("old-token"); code != http.StatusUnauthorized {
		t.Errorf("/status with the old token after the reload = %d, want 401", code)
	}

	for _, name := range []string{"empty", "missing"} {
		var err error
		if name == "empty" {
			err = os.WriteFile(token, []byte("\n"), 0o600)
		} else {
			err = os.Remove(token)
		}
		if err != nil {
			t.Fatal(err)
		}
		err = a.Reload(context.Background(), f.config(src))
		if err == nil || !strings.Contains(err.Error(), "token_file") || !strings.Contains(err.Error(), "reload refused") {
			t.Errorf("Reload with the token file %s = %v, want it refused naming token_file", name, err)
		}
		if rs := a.ReloadStatus(); !strings.Contains(rs.LastError, "token_file") {
			t.Errorf("/status reload after the token file went %s: %+v, want the refusal", name, rs)
		}
		if code := status("new-token"); code != http.StatusOK {
			t.Errorf("/status with the running token after a refused reload (token file %s) = %d, want 200", name, code)
		}
	}
}
